"""insert_output_copies: every graph output gets bytes written by its own kernel.

An output that is a graph input, a constant, an alias (Reshape, Flatten,
Identity) of one of those, or that shares its bytes with an earlier output gets
an explicit edgec::Copy node; the generated C (run on the host) must then put
the right values in every output array.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from edgec.frontend import load_onnx
from edgec.ir import Graph, Node, Tensor
from edgec.passes.insert_output_copies import PASS, alias_root
from edgec.passes.memory_plan import output_roots, plan_memory
from edgec.passes.pipeline import run_pipeline
from onnx_builders import f32, host_vs_onnxruntime, init, model, save

S = [2, 3]


def _load(m, tmp_path):
    return load_onnx(save(m, tmp_path / "m.onnx"))


def _copies(g: Graph) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(n.name, n.inputs, n.outputs) for n in g.nodes if n.op == "Copy"]


def _host_vs_ort(m, tmp_path, seed=0):
    r, xs, ys, _ = host_vs_onnxruntime(save(m, tmp_path / "e2e.onnx"), seed=seed, rtol=1e-5, atol=1e-6)
    return r, xs, ys


def _assert_roots_distinct(g: Graph):
    """After the pass, each output's root is a distinct tensor written by a kernel."""
    prod = g.producers()
    roots = [alias_root(g, o, prod) for o in g.outputs]
    assert len(set(roots)) == len(roots)
    for r in roots:
        assert r not in g.inputs and not g.is_const(r)
        assert r in prod
    assert len(output_roots(g)) == len(g.outputs)


def test_pass_metadata():
    assert PASS.name == "insert_output_copies"


def test_plain_output_gets_no_copy(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", S)], [f32("y", S)])
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.op, n.inputs, n.outputs) for n in after.nodes] == [("Relu", ("x",), ("y",))]
    assert after.outputs == ["y"]


def test_output_that_is_a_graph_input(tmp_path):
    # ONNX allows a graph output to name a graph input directly: no node at all
    m = model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", S)], [f32("x", S), f32("y", S)])
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.op, n.domain, n.inputs, n.outputs) for n in after.nodes] == [
        ("Relu", "", ("x",), ("y",)), ("Copy", "edgec", ("x",), ("x__out",))]
    assert after.outputs == ["x__out", "y"]  # order kept, only the copied one renamed
    t = after.tensor("x__out")
    assert (t.shape, t.dtype, t.is_const) == (tuple(S), "float32", False)
    assert before.outputs == ["x", "y"]  # the input graph is untouched
    _assert_roots_distinct(after)
    r, xs, ys = _host_vs_ort(m, tmp_path)
    np.testing.assert_array_equal(ys[0], xs[0])


def test_graph_with_no_nodes(tmp_path):
    m = model([], [f32("x", S)], [f32("x", S)])
    after = PASS(_load(m, tmp_path))
    assert [(n.op, n.domain) for n in after.nodes] == [("Copy", "edgec")]
    r, xs, ys = _host_vs_ort(m, tmp_path)
    np.testing.assert_array_equal(ys[0], xs[0])


@pytest.mark.parametrize("alias", ["Reshape", "Flatten", "Identity", "Reshape+Squeeze"])
def test_output_that_is_an_alias_of_an_input(alias, tmp_path):
    inits = []
    if alias == "Reshape":
        nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
        inits = [init("shape", np.array([3, 2], np.int64))]
        out = [3, 2]
    elif alias == "Flatten":
        nodes = [helper.make_node("Flatten", ["x"], ["y"], axis=0)]
        out = [1, 6]
    elif alias == "Identity":
        nodes = [helper.make_node("Identity", ["x"], ["y"])]
        out = S
    else:
        nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Squeeze", ["r", "axes"], ["y"])]
        inits = [init("shape", np.array([1, 6], np.int64)), init("axes", np.array([0], np.int64))]
        out = [6]
    m = model(nodes, [f32("x", S)], [f32("y", out)], inits)
    g = run_pipeline(_load(m, tmp_path), ["eliminate_identity"])
    after = PASS(g)
    assert _copies(after) == [("copy_y", ("y",), ("y__out",))]
    assert after.nodes[-1].domain == "edgec"
    assert after.outputs == ["y__out"] and after.tensor("y__out").shape == tuple(out)
    _assert_roots_distinct(after)
    r, xs, ys = _host_vs_ort(m, tmp_path)
    np.testing.assert_array_equal(ys[0], xs[0].reshape(out))


def test_output_that_is_a_constant(tmp_path):
    k = np.arange(6, dtype=np.float32).reshape(S) - 2.5
    m = model(
        [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(k)),
         helper.make_node("Relu", ["x"], ["y"])],
        [f32("x", S)], [f32("y", S), f32("k", S)],
    )
    before = _load(m, tmp_path)
    assert before.is_const("k")
    after = PASS(before)
    assert _copies(after) == [("copy_k", ("k",), ("k__out",))]
    assert after.outputs == ["y", "k__out"]
    _assert_roots_distinct(after)
    r, xs, ys = _host_vs_ort(m, tmp_path)
    np.testing.assert_array_equal(ys[1], k)


def test_output_that_is_an_initializer_and_its_reshape(tmp_path):
    k = np.linspace(-1, 1, 6, dtype=np.float32)
    m = model(
        [helper.make_node("Reshape", ["k", "shape"], ["kr"]), helper.make_node("Add", ["x", "kr"], ["y"])],
        [f32("x", S)], [f32("y", S), f32("k", [6]), f32("kr", S)],
        [init("k", k), init("shape", np.array(S, np.int64))],
    )
    after = PASS(_load(m, tmp_path))
    assert {c[1] for c in _copies(after)} == {("k",), ("kr",)}
    _assert_roots_distinct(after)
    r, xs, ys = _host_vs_ort(m, tmp_path)
    np.testing.assert_array_equal(ys[1], k)
    np.testing.assert_array_equal(ys[2], k.reshape(S))


def test_two_outputs_sharing_bytes_alias(tmp_path):
    # z = Flatten(y) is the same bytes as y: the second one is copied
    m = model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Flatten", ["y"], ["z"], axis=0)],
        [f32("x", S)], [f32("y", S), f32("z", [1, 6])],
    )
    after = PASS(_load(m, tmp_path))
    assert _copies(after) == [("copy_z", ("z",), ("z__out",))]
    assert after.outputs == ["y", "z__out"]
    _assert_roots_distinct(after)
    _host_vs_ort(m, tmp_path)


def test_two_outputs_sharing_bytes_alias_listed_first(tmp_path):
    # the alias comes first among the outputs: the root (listed second) is copied
    m = model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Flatten", ["y"], ["z"], axis=0)],
        [f32("x", S)], [f32("z", [1, 6]), f32("y", S)],
    )
    after = PASS(_load(m, tmp_path))
    assert _copies(after) == [("copy_y", ("y",), ("y__out",))]
    assert after.outputs == ["z", "y__out"]
    _assert_roots_distinct(after)
    _host_vs_ort(m, tmp_path)


def test_two_outputs_sharing_bytes_identity(tmp_path):
    m = model(
        [helper.make_node("Sigmoid", ["x"], ["h"]),
         helper.make_node("Identity", ["h"], ["y1"]), helper.make_node("Identity", ["h"], ["y2"])],
        [f32("x", S)], [f32("y1", S), f32("y2", S)],
    )
    g = run_pipeline(_load(m, tmp_path), ["eliminate_identity"])
    after = PASS(g)
    assert len(_copies(after)) == 1 and after.outputs[0] == "y1"
    _assert_roots_distinct(after)
    r, xs, ys = _host_vs_ort(m, tmp_path)
    np.testing.assert_array_equal(ys[0], ys[1])


def test_same_tensor_listed_twice_as_output():
    g = Graph("g", {"x": Tensor("x", (4,), "float32"), "y": Tensor("y", (4,), "float32")},
              [Node("relu", "Relu", ("x",), ("y",))], ["x"], ["y", "y"])
    after = PASS(g)
    assert _copies(after) == [("copy_y", ("y",), ("y__out",))]
    assert after.outputs == ["y", "y__out"]
    _assert_roots_distinct(after)


def test_all_cases_together_host_c(tmp_path):
    """Input, reshape of input, constant, shared bytes and a normal output in one model."""
    k = np.full((3, 2), 7.0, np.float32)
    m = model(
        [
            helper.make_node("Reshape", ["x", "shape"], ["xr"]),
            helper.make_node("Tanh", ["x"], ["t"]),
            helper.make_node("Flatten", ["t"], ["tf"], axis=0),
            helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(k)),
        ],
        [f32("x", S)],
        [f32("x", S), f32("xr", [3, 2]), f32("t", S), f32("tf", [1, 6]), f32("k", [3, 2])],
        [init("shape", np.array([3, 2], np.int64))],
    )
    after = run_pipeline(_load(m, tmp_path), "float")
    assert sorted(c[1][0] for c in _copies(after)) == ["k", "tf", "x", "xr"]
    assert all(n.domain == "edgec" for n in after.nodes if n.op == "Copy")
    _assert_roots_distinct(after)
    plan = plan_memory(after)
    # each output is written once into its own output array
    out_bufs = [b for b in plan.buffers if b.kind == "output"]
    assert sorted(b.io_index for b in out_bufs) == list(range(5))
    r, xs, ys = _host_vs_ort(m, tmp_path)
    x = xs[0]
    np.testing.assert_array_equal(ys[0], x)
    np.testing.assert_array_equal(ys[1], x.reshape(3, 2))
    np.testing.assert_array_equal(ys[4], k)
    assert [layer.kind for layer in r.layers].count("copy") == 4


def test_pass_is_idempotent(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", S)], [f32("x", S), f32("y", S)])
    once = PASS(_load(m, tmp_path))
    twice = PASS(once)
    assert [(n.op, n.inputs, n.outputs) for n in twice.nodes] == [(n.op, n.inputs, n.outputs) for n in once.nodes]
    assert twice.outputs == once.outputs


def test_copy_name_does_not_collide_with_existing_tensor(tmp_path):
    m = model(
        [helper.make_node("Transpose", ["x"], ["x__out"]), helper.make_node("Sigmoid", ["x__out"], ["y"])],
        [f32("x", S)], [f32("x", S), f32("y", [3, 2])],
    )
    after = PASS(_load(m, tmp_path))
    assert len(after.producers()) == len(after.nodes)  # one producer per tensor
    assert after.tensor("x__out").shape == (3, 2)
    _assert_roots_distinct(after)
    r, xs, ys = _host_vs_ort(m, tmp_path)
    np.testing.assert_array_equal(ys[0], xs[0])
