"""fuse_activation: elementwise activations become an `_epilogue` of their producer.

Structure checks compare with the expected fused graph (op, inputs, outputs,
the `_epilogue` nodes); values are checked with the ops' NumPy references
before/after the pass and end to end (host C vs onnxruntime).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from edgec.frontend import load_onnx
from edgec.ir import Graph, Node, Tensor
from edgec.ir.interpret import run_reference
from edgec.passes.fuse_activation import PASS
from onnx_builders import f32, host_vs_onnxruntime, init, model, save


def evaluate(g: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return run_reference(g, feeds)


def assert_same_function(before: Graph, after: Graph):
    rng = np.random.default_rng(0)
    feeds = {i: rng.standard_normal(before.tensor(i).shape).astype(np.float32) for i in before.inputs}
    for a, b in zip(evaluate(before, feeds), evaluate(after, feeds)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)


def _load(m, tmp_path):
    return load_onnx(save(m, tmp_path / "m.onnx"))


def _host_vs_ort(m, tmp_path, scale=1.0):
    r, _, _, refs = host_vs_onnxruntime(save(m, tmp_path / "e2e.onnx"), seed=1, scale=scale)
    return r, refs


def _epi(n: Node) -> list[str]:
    return [e.op for e in n.attrs.get("_epilogue", ())]


def _conv(rng, x, y, c_in=3, c_out=4, name="conv", wname="w"):
    return (helper.make_node("Conv", [x, wname, wname + "_b"], [y], name=name, pads=[1, 1, 1, 1]),
            [init(wname, rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)),
             init(wname + "_b", rng.standard_normal(c_out).astype(np.float32))])


X = [1, 3, 6, 6]
Y = [1, 4, 6, 6]


def test_conv_relu_fused(tmp_path):
    rng = np.random.default_rng(0)
    conv, inits = _conv(rng, "x", "c")
    m = model([conv, helper.make_node("Relu", ["c"], ["y"], name="relu")], [f32("x", X)], [f32("y", Y)], inits)
    before = _load(m, tmp_path)
    after = PASS(before)
    assert len(after.nodes) == 1
    n = after.nodes[0]
    assert (n.op, n.name, n.inputs, n.outputs) == ("Conv", "conv", ("x", "w", "w_b"), ("y",))
    assert _epi(n) == ["Relu"]
    (relu,) = n.attrs["_epilogue"]
    assert relu is before.nodes[1]  # the activation node itself, unchanged
    assert relu.inputs == ("c",) and relu.outputs == ("y",)
    assert list(n.attrs["pads"]) == [1, 1, 1, 1]  # the producer keeps its attrs
    # no intermediate tensor is produced or read any more (the table may still
    # describe it: Graph.with_nodes keeps every epilogue input)
    assert "c" not in after.producers() and "c" not in after.consumers()
    assert _epi(before.nodes[0]) == []  # the input graph is untouched
    assert_same_function(before, after)


def test_conv_clip_relu6_fused_and_correct(tmp_path):
    rng = np.random.default_rng(2)
    conv, inits = _conv(rng, "x", "c")
    inits += [init("lo", np.array(0.0, np.float32)), init("hi", np.array(6.0, np.float32))]
    m = model([conv, helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="relu6")],
              [f32("x", X)], [f32("y", Y)], inits)
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.op, n.outputs, _epi(n)) for n in after.nodes] == [("Conv", ("y",), ["Clip"])]
    clip = after.nodes[0].attrs["_epilogue"][0]
    assert clip.inputs == ("c", "lo", "hi")
    # the epilogue's constants stay in the graph (the kernel bakes them in)
    assert after.tensor("lo").is_const and after.tensor("hi").is_const
    assert_same_function(before, after)
    # inputs scaled so that both bounds of the clip are hit
    r, refs = _host_vs_ort(m, tmp_path, scale=3.0)
    assert (refs[0] == 0).any() and (refs[0] == 6).any()
    assert [layer.op for layer in r.layers] == ["Conv+Clip"]


def test_conv_relu_host_c(tmp_path):
    rng = np.random.default_rng(3)
    conv, inits = _conv(rng, "x", "c")
    m = model([conv, helper.make_node("Relu", ["c"], ["y"])], [f32("x", X)], [f32("y", Y)], inits)
    r, _ = _host_vs_ort(m, tmp_path)
    assert [layer.op for layer in r.layers] == ["Conv+Relu"]
    assert len(r.kernels.sources) == 1


def test_chain_of_activations_all_fused(tmp_path):
    rng = np.random.default_rng(4)
    conv, inits = _conv(rng, "x", "c")
    inits += [init("lo", np.array(-0.5, np.float32)), init("hi", np.array(0.5, np.float32))]
    m = model(
        [conv, helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Sigmoid", ["r"], ["s"]),
         helper.make_node("Clip", ["s", "lo", "hi"], ["y"])],
        [f32("x", X)], [f32("y", Y)], inits,
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.op, n.outputs, _epi(n)) for n in after.nodes] == [("Conv", ("y",), ["Relu", "Sigmoid", "Clip"])]
    assert not {"c", "r", "s"} & (set(after.producers()) | set(after.consumers()))
    assert_same_function(before, after)
    _host_vs_ort(m, tmp_path)


@pytest.mark.parametrize("producer", ["Gemm", "MatMul", "Add", "Mul", "MaxPool", "GlobalAveragePool"])
def test_other_producers_fused(producer, tmp_path):
    rng = np.random.default_rng(5)
    inits = []
    if producer == "Gemm":
        node = helper.make_node("Gemm", ["x", "w"], ["p"], transB=1)
        inits.append(init("w", rng.standard_normal((5, 6)).astype(np.float32)))
        xs, ys = [2, 6], [2, 5]
    elif producer == "MatMul":
        node = helper.make_node("MatMul", ["x", "w"], ["p"])
        inits.append(init("w", rng.standard_normal((6, 5)).astype(np.float32)))
        xs, ys = [2, 6], [2, 5]
    elif producer in ("Add", "Mul"):
        node = helper.make_node(producer, ["x", "k"], ["p"])
        inits.append(init("k", rng.standard_normal((1, 4, 1, 1)).astype(np.float32)))
        xs = ys = [1, 4, 3, 3]
    elif producer == "MaxPool":
        node = helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2])
        xs, ys = [1, 4, 4, 4], [1, 4, 2, 2]
    else:
        node = helper.make_node("GlobalAveragePool", ["x"], ["p"])
        xs, ys = [1, 4, 4, 4], [1, 4, 1, 1]
    m = model([node, helper.make_node("LeakyRelu", ["p"], ["y"], alpha=0.1)], [f32("x", xs)], [f32("y", ys)], inits)
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.op, n.outputs, _epi(n)) for n in after.nodes] == [(producer, ("y",), ["LeakyRelu"])]
    assert_same_function(before, after)


def test_relu_whose_producer_output_has_two_consumers_not_fused(tmp_path):
    rng = np.random.default_rng(6)
    conv, inits = _conv(rng, "x", "c")
    m = model(
        [conv, helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Add", ["r", "c"], ["y"])],
        [f32("x", X)], [f32("y", Y)], inits,
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.op, n.inputs[:1], n.outputs, _epi(n)) for n in after.nodes] == [
        ("Conv", ("x",), ("c",), []), ("Relu", ("c",), ("r",), []), ("Add", ("r",), ("y",), [])]
    assert_same_function(before, after)
    _host_vs_ort(m, tmp_path)


def test_two_activations_of_one_producer_not_fused(tmp_path):
    rng = np.random.default_rng(7)
    conv, inits = _conv(rng, "x", "c")
    m = model(
        [conv, helper.make_node("Relu", ["c"], ["y1"]), helper.make_node("Sigmoid", ["c"], ["y2"])],
        [f32("x", X)], [f32("y1", Y), f32("y2", Y)], inits,
    )
    after = PASS(_load(m, tmp_path))
    assert [(n.op, _epi(n)) for n in after.nodes] == [("Conv", []), ("Relu", []), ("Sigmoid", [])]


def test_producer_of_a_graph_output_not_fused(tmp_path):
    rng = np.random.default_rng(8)
    conv, inits = _conv(rng, "x", "c")
    m = model([conv, helper.make_node("Relu", ["c"], ["y"])], [f32("x", X)], [f32("c", Y), f32("y", Y)], inits)
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.op, n.outputs, _epi(n)) for n in after.nodes] == [("Conv", ("c",), []), ("Relu", ("y",), [])]
    _host_vs_ort(m, tmp_path)


def test_activation_producing_a_graph_output_is_fused(tmp_path):
    # only the *producer's* output matters; the activation may be the graph output
    rng = np.random.default_rng(9)
    conv, inits = _conv(rng, "x", "c")
    m = model([conv, helper.make_node("Relu", ["c"], ["y"]), helper.make_node("Sigmoid", ["y"], ["z"])],
              [f32("x", X)], [f32("y", Y), f32("z", Y)], inits)
    after = PASS(_load(m, tmp_path))
    assert [(n.op, n.outputs, _epi(n)) for n in after.nodes] == [("Conv", ("y",), ["Relu"]), ("Sigmoid", ("z",), [])]
    _host_vs_ort(m, tmp_path)


def test_activation_of_graph_input_or_non_producer_not_fused(tmp_path):
    m = model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Transpose", ["r"], ["t"], perm=[0, 1, 3, 2]),
         helper.make_node("Sigmoid", ["t"], ["y"])],
        [f32("x", [1, 2, 3, 4])], [f32("y", [1, 2, 4, 3])],
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.op, _epi(n)) for n in after.nodes] == [("Relu", []), ("Transpose", []), ("Sigmoid", [])]


def test_clip_with_runtime_bound_not_fused():
    t = {n: Tensor(n, (1, 2, 3, 3), "float32") for n in ("x", "c", "y")}
    t["w"] = Tensor("w", (2, 2, 1, 1), "float32", np.ones((2, 2, 1, 1), np.float32))
    t["lo"] = Tensor("lo", (), "float32")  # a graph input, not a constant
    g = Graph("g", t, [Node("conv", "Conv", ("x", "w"), ("c",)), Node("clip", "Clip", ("c", "lo"), ("y",))],
              ["x", "lo"], ["y"])
    after = PASS(g)
    assert [(n.op, _epi(n)) for n in after.nodes] == [("Conv", []), ("Clip", [])]


def test_clip_with_absent_min_fused():
    t = {n: Tensor(n, (1, 2, 3, 3), "float32") for n in ("x", "c", "y")}
    t["w"] = Tensor("w", (2, 2, 1, 1), "float32", np.ones((2, 2, 1, 1), np.float32))
    t["hi"] = Tensor("hi", (), "float32", np.array(0.5, np.float32))
    g = Graph("g", t, [Node("conv", "Conv", ("x", "w"), ("c",)), Node("clip", "Clip", ("c", "", "hi"), ("y",))],
              ["x"], ["y"])
    after = PASS(g)
    assert [(n.op, n.outputs, _epi(n)) for n in after.nodes] == [("Conv", ("y",), ["Clip"])]
    assert "hi" in after.tensors
    assert_same_function(g, after)


def test_two_branches_fuse_independently(tmp_path):
    rng = np.random.default_rng(10)
    c1, i1 = _conv(rng, "x", "a", name="conv1", wname="w1")
    c2, i2 = _conv(rng, "x", "b", name="conv2", wname="w2")
    m = model(
        [c1, c2, helper.make_node("Relu", ["a"], ["ra"]), helper.make_node("Tanh", ["b"], ["tb"]),
         helper.make_node("Add", ["ra", "tb"], ["s"]), helper.make_node("Relu", ["s"], ["y"])],
        [f32("x", X)], [f32("y", Y)], i1 + i2,
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.name, n.outputs, _epi(n)) for n in after.nodes] == [
        ("conv1", ("ra",), ["Relu"]), ("conv2", ("tb",), ["Tanh"]), ("Add_4", ("y",), ["Relu"])]
    assert after.nodes[2].inputs == ("ra", "tb")
    assert_same_function(before, after)
    _host_vs_ort(m, tmp_path)
