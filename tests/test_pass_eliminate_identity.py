"""eliminate_identity: Identity / Dropout nodes disappear by renaming tensors.

Each case builds a small "before" graph (ONNX via onnx.helper + load_onnx, or
edgec IR directly where the frontend would fold the interesting part away), runs
the pass alone and compares the result with the expected structure. End-to-end
cases run the generated C on the host against onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from edgec.frontend import load_onnx
from edgec.ir import Graph, Node, Tensor
from edgec.passes.eliminate_identity import PASS
from edgec.passes.pipeline import PIPELINES, get_pass, run_pipeline
from onnx_builders import f32, host_vs_onnxruntime, init, model, save

SHAPE = [1, 4, 3, 3]


def _load(m, tmp_path):
    return load_onnx(save(m, tmp_path / "m.onnx"))


def _structure(g: Graph) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(n.op, n.inputs, n.outputs) for n in g.nodes]


def _host_vs_ort(m, tmp_path, xs):
    return host_vs_onnxruntime(save(m, tmp_path / "e2e.onnx"), xs=xs, rtol=1e-5, atol=1e-6)[0]


def test_pass_metadata():
    assert PASS.name == "eliminate_identity"
    assert get_pass("eliminate_identity") is PASS
    assert PIPELINES["float"][0] == "eliminate_identity"


def test_identity_dropout_chain_removed(tmp_path):
    # x -> Relu -> a -> Identity -> b -> Dropout(ratio) -> c -> Identity -> d -> Sigmoid -> y
    m = model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="relu"),
            helper.make_node("Identity", ["a"], ["b"], name="id1"),
            helper.make_node("Dropout", ["b", "ratio"], ["c"], name="drop"),
            helper.make_node("Identity", ["c"], ["d"], name="id2"),
            helper.make_node("Sigmoid", ["d"], ["y"], name="sig"),
        ],
        [f32("x", SHAPE)],
        [f32("y", SHAPE)],
        [init("ratio", np.array(0.5, np.float32))],
    )
    before = _load(m, tmp_path)
    assert [n.op for n in before.nodes] == ["Relu", "Identity", "Dropout", "Identity", "Sigmoid"]
    after = PASS(before)
    assert _structure(after) == [("Relu", ("x",), ("a",)), ("Sigmoid", ("a",), ("y",))]
    # the removed tensors (and Dropout's ratio) are gone from the tensor table
    assert not {"b", "c", "d", "ratio"} & set(after.tensors)
    assert after.inputs == ["x"] and after.outputs == ["y"]
    # the pass builds a new graph: the input graph is untouched
    assert [n.op for n in before.nodes] == ["Relu", "Identity", "Dropout", "Identity", "Sigmoid"]


def test_identity_on_graph_input_not_output_removed(tmp_path):
    m = model(
        [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])],
        [f32("x", SHAPE)],
        [f32("y", SHAPE)],
    )
    after = PASS(_load(m, tmp_path))
    assert _structure(after) == [("Relu", ("x",), ("y",))]


def test_identity_feeding_graph_output_renames_producer(tmp_path):
    # x -> Relu -> h -> Identity -> y(out); h -> Sigmoid -> z(out)
    m = model(
        [
            helper.make_node("Relu", ["x"], ["h"], name="relu"),
            helper.make_node("Identity", ["h"], ["y"], name="id"),
            helper.make_node("Sigmoid", ["h"], ["z"], name="sig"),
        ],
        [f32("x", SHAPE)],
        [f32("y", SHAPE), f32("z", SHAPE)],
    )
    after = PASS(_load(m, tmp_path))
    # the producer now writes the graph output name; the other reader follows
    assert _structure(after) == [("Relu", ("x",), ("y",)), ("Sigmoid", ("y",), ("z",))]
    assert after.outputs == ["y", "z"]
    assert "h" not in after.tensors
    assert after.tensor("y").shape == tuple(SHAPE)


def test_identity_chain_to_graph_output(tmp_path):
    m = model(
        [
            helper.make_node("Relu", ["x"], ["h"]),
            helper.make_node("Identity", ["h"], ["a"]),
            helper.make_node("Dropout", ["a"], ["b"]),
            helper.make_node("Identity", ["b"], ["y"]),
        ],
        [f32("x", SHAPE)],
        [f32("y", SHAPE)],
    )
    after = PASS(_load(m, tmp_path))
    assert _structure(after) == [("Relu", ("x",), ("y",))]
    assert set(after.tensors) == {"x", "y"}


def test_identity_input_straight_to_output_kept(tmp_path):
    m = model([helper.make_node("Identity", ["x"], ["y"], name="id")], [f32("x", SHAPE)], [f32("y", SHAPE)])
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _structure(after) == [("Identity", ("x",), ("y",))]
    # the full pipeline then turns it into a copy
    full = run_pipeline(before, "float")
    assert [(n.op, n.domain) for n in full.nodes] == [("Identity", ""), ("Copy", "edgec")]


def test_identity_chain_input_to_output_collapses_to_one(tmp_path):
    # x -> Identity -> a -> Dropout -> b -> Identity -> y: one node x -> y stays
    m = model(
        [
            helper.make_node("Identity", ["x"], ["a"]),
            helper.make_node("Dropout", ["a"], ["b"]),
            helper.make_node("Identity", ["b"], ["y"]),
        ],
        [f32("x", SHAPE)],
        [f32("y", SHAPE)],
    )
    after = PASS(_load(m, tmp_path))
    assert len(after.nodes) == 1
    n = after.nodes[0]
    assert n.op in ("Identity", "Dropout") and n.inputs[0] == "x" and n.outputs == ("y",)
    assert set(after.tensors) == {"x", "y"}


def test_identity_whose_source_is_another_output_kept(tmp_path):
    # h is itself a graph output: renaming it would lose one of the two names
    m = model(
        [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Identity", ["h"], ["y"])],
        [f32("x", SHAPE)],
        [f32("h", SHAPE), f32("y", SHAPE)],
    )
    after = PASS(_load(m, tmp_path))
    assert _structure(after) == [("Relu", ("x",), ("h",)), ("Identity", ("h",), ("y",))]
    assert after.outputs == ["h", "y"]


def test_two_identities_of_one_tensor_to_two_outputs(tmp_path):
    m = model(
        [
            helper.make_node("Relu", ["x"], ["h"]),
            helper.make_node("Identity", ["h"], ["y1"]),
            helper.make_node("Identity", ["h"], ["y2"]),
        ],
        [f32("x", SHAPE)],
        [f32("y1", SHAPE), f32("y2", SHAPE)],
    )
    after = PASS(_load(m, tmp_path))
    assert _structure(after) == [("Relu", ("x",), ("y1",)), ("Identity", ("y1",), ("y2",))]


def _ir_graph(nodes, tensors, inputs, outputs) -> Graph:
    return Graph("g", {t.name: t for t in tensors}, nodes, inputs, outputs)


def test_identity_of_constant_to_output_kept():
    # (the ONNX frontend folds this; the pass must still be safe on such IR)
    k = Tensor("k", (2, 2), "float32", np.arange(4, dtype=np.float32).reshape(2, 2))
    g = _ir_graph(
        [Node("id", "Identity", ("k",), ("y",)), Node("relu", "Relu", ("x",), ("z",))],
        [k, Tensor("y", (2, 2), "float32"), Tensor("x", (2, 2), "float32"), Tensor("z", (2, 2), "float32")],
        ["x"],
        ["y", "z"],
    )
    after = PASS(g)
    assert _structure(after) == [("Identity", ("k",), ("y",)), ("Relu", ("x",), ("z",))]
    assert after.tensor("k").is_const


def test_identity_in_other_domain_untouched():
    g = _ir_graph(
        [Node("relu", "Relu", ("x",), ("a",)), Node("id", "Identity", ("a",), ("b",), {}, "com.vendor"),
         Node("sig", "Sigmoid", ("b",), ("y",))],
        [Tensor(n, (4,), "float32") for n in ("x", "a", "b", "y")],
        ["x"],
        ["y"],
    )
    assert _structure(PASS(g)) == _structure(g)


def test_no_identity_is_a_no_op(tmp_path):
    m = model(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["a"], ["y"])],
        [f32("x", SHAPE)],
        [f32("y", SHAPE)],
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _structure(after) == _structure(before)
    assert set(after.tensors) == set(before.tensors)


@pytest.mark.parametrize("case", ["chain", "to_output", "input_to_output", "source_is_output"])
def test_end_to_end_matches_onnxruntime(case, tmp_path):
    rng = np.random.default_rng(0)
    if case == "chain":
        nodes = [
            helper.make_node("Relu", ["x"], ["a"]),
            helper.make_node("Identity", ["a"], ["b"]),
            helper.make_node("Dropout", ["b", "ratio"], ["c"]),
            helper.make_node("Sigmoid", ["c"], ["y"]),
        ]
        outs, inits = [f32("y", SHAPE)], [init("ratio", np.array(0.25, np.float32))]
    elif case == "to_output":
        nodes = [
            helper.make_node("Relu", ["x"], ["h"]),
            helper.make_node("Identity", ["h"], ["y"]),
            helper.make_node("Sigmoid", ["h"], ["z"]),
        ]
        outs, inits = [f32("y", SHAPE), f32("z", SHAPE)], []
    elif case == "input_to_output":
        nodes = [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Tanh", ["x"], ["z"])]
        outs, inits = [f32("y", SHAPE), f32("z", SHAPE)], []
    else:
        nodes = [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Identity", ["h"], ["y"])]
        outs, inits = [f32("h", SHAPE), f32("y", SHAPE)], []
    m = model(nodes, [f32("x", SHAPE)], outs, inits)
    r = _host_vs_ort(m, tmp_path, [rng.standard_normal(SHAPE).astype(np.float32)])
    assert not any(n.op in ("Identity", "Dropout") and n.inputs[0] not in r.graph.inputs
                   and n.inputs[0] not in r.graph.outputs for n in r.graph.nodes)
