"""The ONNX backend node tests through edgec's generated C (see edgec/nodetests.py).

One test per node test (ids = the ONNX test names; `<name>__y_only` = the same
test without optional outputs edgec does not produce; `edgec_*` = edgec's extra
cases). A test edgec rejects as unsupported is skipped with edgec's reason; a
known bug outside the op bundles is an expected failure; everything else must
match the expected outputs.

All selected cases are compiled and run once, in parallel worker processes
(EDGEC_NODETEST_JOBS, default: the CPU count), the first time a result is
needed; `test_summary` prints the counts table (`python -m edgec.nodetests`
prints the same).
"""

from __future__ import annotations

import os

import pytest

from edgec import nodetests as nt

# Every op edgec claims must be exercised by at least one passing case.
REQUIRED_OPS = (
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Clip", "LeakyRelu",
    "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean",
    "Softmax", "LayerNormalization", "BatchNormalization", "Reshape", "Flatten", "Transpose", "Squeeze",
    "Unsqueeze", "Concat", "Slice", "Pad", "Resize", "Identity", "Dropout",
)

NAMES = nt.case_names()
SUMMARY_TEST = "test_summary"


class _Results:
    """Runs every selected case once (in parallel) and hands out results."""

    def __init__(self, wanted: list[str]):
        self.wanted = wanted
        self.results: dict[str, nt.CaseResult] = {}

    def get(self, name: str) -> nt.CaseResult:
        if name not in self.results:
            todo = [n for n in self.wanted if n not in self.results]
            if name not in todo:
                todo.append(name)
            jobs = int(os.environ.get("EDGEC_NODETEST_JOBS", "0")) or None
            for r in nt.run_cases([nt.get_case(n) for n in todo], jobs):
                self.results[r.name] = r
        return self.results[name]

    def all(self) -> list[nt.CaseResult]:
        return [self.get(n) for n in NAMES]


@pytest.fixture(scope="session")
def node_results(request) -> _Results:
    items = request.session.items
    if any(getattr(it, "originalname", it.name) == SUMMARY_TEST and it.module.__name__ == __name__ for it in items):
        wanted = list(NAMES)
    else:
        wanted = [it.callspec.params["name"] for it in items
                  if it.module.__name__ == __name__ and hasattr(it, "callspec") and "name" in it.callspec.params]
    return _Results(wanted)


def _check(r: nt.CaseResult) -> None:
    if r.status == "passed":
        return
    if r.status == "unsupported":
        pytest.skip(f"unsupported by edgec: {r.reason}")
    if r.status == "known":
        pytest.xfail(r.reason)
    detail = "\n".join(r.details[1:6])
    pytest.fail(f"{r.name}: {r.reason}" + (f"\n{detail}" if detail else ""), pytrace=False)


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_node(name: str, node_results: _Results) -> None:
    _check(node_results.get(name))


def test_summary(node_results: _Results, capsys) -> None:
    summary = nt.Summary(node_results.all())
    with capsys.disabled():
        print("\n" + summary.text())
    assert not summary.failures, f"{len(summary.failures)} node test(s) failed:\n" + "\n".join(
        f"  {r.name}: {r.reason}" for r in summary.failures
    )
    per_op = summary.per_op()
    uncovered = [op for op in REQUIRED_OPS if per_op.get(op, {}).get("passed", 0) == 0]
    assert not uncovered, f"ops without a passing node test: {uncovered}"
    assert len({r.name for r in summary.results}) == len(summary.results)


def test_static_inputs_are_baked() -> None:
    """Graph inputs feeding static inputs (directly or via foldable nodes) become initializers."""
    import numpy as np
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Concat", ["a", "b"], ["shape"], axis=0), helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("a", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("b", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    baked, keep = nt.bake_static_inputs(m, [np.zeros((2, 3), np.float32), np.array([3]), np.array([2])])
    assert keep == [0]
    assert [i.name for i in baked.graph.input] == ["x"]
    assert sorted(i.name for i in baked.graph.initializer) == ["a", "b"]


def test_loads_the_onnx_data_folder_layout(tmp_path) -> None:
    """When onnx ships backend/test/data/node (or EDGEC_ONNX_NODE_DIR names one),
    the cases are read from that folder; it holds the same data as the generator."""
    import numpy as np
    from onnx import numpy_helper

    for name in ("test_slice_neg_steps", "test_resize_downsample_scales_linear"):
        case = nt.get_case(name)
        d = tmp_path / name
        (d / "test_data_set_0").mkdir(parents=True)
        (d / "model.onnx").write_bytes(case.model.SerializeToString())
        ins, outs = case.data_sets[0]
        for kind, arrays, infos in (("input", ins, case.model.graph.input), ("output", outs, case.model.graph.output)):
            for k, (a, vi) in enumerate(zip(arrays, infos)):
                (d / "test_data_set_0" / f"{kind}_{k}.pb").write_bytes(numpy_helper.from_array(a, vi.name).SerializeToString())
        loaded = nt._load_dir(d)
        assert loaded.name == name and loaded.ops == case.ops
        for (li, lo), (ci, co) in zip(loaded.data_sets, case.data_sets):
            for a, b in zip(li + lo, ci + co):
                np.testing.assert_array_equal(a, b)
