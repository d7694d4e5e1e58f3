"""fold_batchnorm: BatchNormalization folded into Conv / ConvTranspose / Gemm.

Structure checks compare the graph after the pass with the expected one; the
numerical checks evaluate the graph before and after the pass with edgec's op
NumPy references, and end-to-end cases run the generated C on the host against
onnxruntime. Cases where folding must not happen keep the BN node.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from edgec.frontend import load_onnx
from edgec.ir import Graph, Node, Tensor
from edgec.ir.interpret import run_reference
from edgec.passes.fold_batchnorm import PASS
from edgec.passes.pipeline import run_pipeline
from onnx_builders import conv_bn_relu, f32, host_vs_onnxruntime, init, model, save


# ---- helpers -----------------------------------------------------------------

def evaluate(g: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return run_reference(g, feeds)


def _rand_feeds(g: Graph, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i: rng.standard_normal(g.tensor(i).shape).astype(np.float32) for i in g.inputs}


def assert_same_function(before: Graph, after: Graph, rtol=1e-4, atol=1e-5):
    feeds = _rand_feeds(before)
    for a, b in zip(evaluate(before, feeds), evaluate(after, feeds)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


def _bn_inits(rng, c, prefix="bn_"):
    return [
        init(prefix + "s", rng.uniform(0.5, 1.5, c).astype(np.float32)),
        init(prefix + "b", rng.standard_normal(c).astype(np.float32)),
        init(prefix + "m", rng.standard_normal(c).astype(np.float32)),
        init(prefix + "v", rng.uniform(0.5, 2.0, c).astype(np.float32)),
    ]


def _bn(x, y, prefix="bn_", name="bn", **kw):
    return helper.make_node("BatchNormalization", [x] + [prefix + k for k in "sbmv"], [y], name=name, **kw)


def _load(m, tmp_path, name="m.onnx"):
    return load_onnx(save(m, tmp_path / name))


def _host_vs_ort(m, tmp_path, seed=0):
    return host_vs_onnxruntime(save(m, tmp_path / "e2e.onnx"), seed=seed)[0]


def _ops(g: Graph) -> list[str]:
    return [n.op for n in g.nodes]


# ---- folding happens -----------------------------------------------------------

def test_conv_bn_folded_structure_and_values(tmp_path):
    before = _load(conv_bn_relu(np.random.default_rng(0)), tmp_path)
    assert _ops(before) == ["Conv", "BatchNormalization", "Relu"]
    after = PASS(before)
    assert _ops(after) == ["Conv", "Relu"]
    conv = after.nodes[0]
    # the Conv reads fresh folded constants and writes the BN's output name
    assert conv.inputs[0] == "x" and conv.outputs == ("n",)
    w, b = after.tensor(conv.inputs[1]), after.tensor(conv.inputs[2])
    assert w.is_const and b.is_const
    assert w.shape == (4, 3, 3, 3) and b.shape == (4,) and w.dtype == b.dtype == "float32"
    assert after.nodes[1].inputs == ("n",)
    # the BN parameters, the old weights and the conv's old output are gone
    assert not {"s", "bb", "m", "v", "w", "b", "c"} & set(after.tensors)
    # the original conv attrs survive
    assert list(conv.attrs["pads"]) == [1, 1, 1, 1]
    assert_same_function(before, after)
    # the input graph is left as it was
    assert _ops(before) == ["Conv", "BatchNormalization", "Relu"]


def test_folded_weights_match_formula(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    m = model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"), _bn("c", "y", epsilon=1e-3)],
        [f32("x", [1, 3, 2, 2])], [f32("y", [1, 2, 2, 2])],
        [init("w", w), init("b", b)] + _bn_inits(rng, 2),
    )
    g = _load(m, tmp_path)
    gamma, beta, mean, var = (g.tensor("bn_" + k).data.astype(np.float64) for k in "sbmv")
    after = PASS(g)
    (conv,) = after.nodes
    s = gamma / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(after.tensor(conv.inputs[1]).data, w * s[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(after.tensor(conv.inputs[2]).data, (b - mean) * s + beta, rtol=1e-6, atol=1e-6)


def test_conv_without_bias_gets_one(tmp_path):
    rng = np.random.default_rng(1)
    m = model(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", strides=[2, 2]), _bn("c", "y")],
        [f32("x", [1, 3, 8, 8])], [f32("y", [1, 5, 3, 3])],
        [init("w", rng.standard_normal((5, 3, 3, 3)).astype(np.float32))] + _bn_inits(rng, 5),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Conv"]
    assert len(after.nodes[0].inputs) == 3 and after.tensor(after.nodes[0].inputs[2]).shape == (5,)
    assert after.nodes[0].attrs["strides"] == [2, 2]
    assert_same_function(before, after)


def test_depthwise_conv_folded(tmp_path):
    rng = np.random.default_rng(2)
    c = 6
    m = model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="dw", group=c, pads=[1, 1, 1, 1]), _bn("c", "y")],
        [f32("x", [1, c, 5, 5])], [f32("y", [1, c, 5, 5])],
        [init("w", rng.standard_normal((c, 1, 3, 3)).astype(np.float32)),
         init("b", rng.standard_normal(c).astype(np.float32))] + _bn_inits(rng, c),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Conv"] and after.nodes[0].attrs["group"] == c
    assert_same_function(before, after)


def test_conv1d_folded(tmp_path):
    rng = np.random.default_rng(4)
    m = model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv1d", pads=[1, 1]), _bn("c", "y")],
        [f32("x", [1, 3, 10])], [f32("y", [1, 4, 10])],
        [init("w", rng.standard_normal((4, 3, 3)).astype(np.float32)),
         init("b", rng.standard_normal(4).astype(np.float32))] + _bn_inits(rng, 4),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Conv"]
    assert_same_function(before, after)


@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose_folded(group, tmp_path):
    rng = np.random.default_rng(5)
    c_in, c_out = 4, 6
    m = model(
        [helper.make_node("ConvTranspose", ["x", "w", "b"], ["c"], name="up", strides=[2, 2], group=group),
         _bn("c", "y")],
        [f32("x", [1, c_in, 3, 3])], [f32("y", [1, c_out, 7, 7])],
        [init("w", rng.standard_normal((c_in, c_out // group, 3, 3)).astype(np.float32)),
         init("b", rng.standard_normal(c_out).astype(np.float32))] + _bn_inits(rng, c_out),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["ConvTranspose"]
    assert after.tensor(after.nodes[0].inputs[1]).shape == (c_in, c_out // group, 3, 3)
    assert_same_function(before, after)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("bias", ["none", "1d", "row"])
def test_gemm_folded(trans_b, bias, tmp_path):
    rng = np.random.default_rng(6)
    k, n = 5, 3
    w = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    inits = [init("w", w)] + _bn_inits(rng, n)
    ins = ["x", "w"]
    if bias != "none":
        inits.append(init("b", rng.standard_normal(n if bias == "1d" else (1, n)).astype(np.float32)))
        ins.append("b")
    m = model(
        [helper.make_node("Gemm", ins, ["c"], name="fc", transB=trans_b), _bn("c", "y")],
        [f32("x", [2, k])], [f32("y", [2, n])], inits,
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Gemm"]
    fc = after.nodes[0]
    assert fc.outputs == ("y",) and fc.attrs.get("transB", 0) == trans_b
    assert after.tensor(fc.inputs[1]).shape == w.shape and after.tensor(fc.inputs[2]).shape == (n,)
    assert_same_function(before, after)


def test_every_bn_of_a_chain_folded(tmp_path):
    rng = np.random.default_rng(7)
    m = model(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
            _bn("c1", "n1", prefix="a_", name="bn1"),
            helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
            helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
            _bn("c2", "y", prefix="b_", name="bn2"),
        ],
        [f32("x", [1, 3, 6, 6])], [f32("y", [1, 4, 6, 6])],
        [init("w1", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
         init("w2", rng.standard_normal((4, 4, 3, 3)).astype(np.float32))]
        + _bn_inits(rng, 4, "a_") + _bn_inits(rng, 4, "b_"),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Conv", "Relu", "Conv"]
    assert [n.outputs for n in after.nodes] == [("n1",), ("r1",), ("y",)]
    assert_same_function(before, after)


def test_shared_weights_are_not_modified(tmp_path):
    # one weight initializer read by two Convs, only one followed by BN
    rng = np.random.default_rng(8)
    w = rng.standard_normal((3, 3, 1, 1)).astype(np.float32)
    m = model(
        [
            helper.make_node("Conv", ["x", "w"], ["c1"], name="conv1"),
            _bn("c1", "n1"),
            helper.make_node("Conv", ["n1", "w"], ["y"], name="conv2"),
        ],
        [f32("x", [1, 3, 4, 4])], [f32("y", [1, 3, 4, 4])],
        [init("w", w)] + _bn_inits(rng, 3),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Conv", "Conv"]
    assert after.nodes[1].inputs[1] == "w"
    np.testing.assert_array_equal(after.tensor("w").data, w)
    assert after.nodes[0].inputs[1] != "w"
    assert_same_function(before, after)


# ---- folding must not happen ---------------------------------------------------

def test_conv_output_used_twice_not_folded(tmp_path):
    rng = np.random.default_rng(9)
    m = model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
            _bn("c", "n"),
            helper.make_node("Add", ["n", "c"], ["y"], name="add"),
        ],
        [f32("x", [1, 3, 4, 4])], [f32("y", [1, 2, 4, 4])],
        [init("w", rng.standard_normal((2, 3, 1, 1)).astype(np.float32))] + _bn_inits(rng, 2),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert [(n.op, n.inputs, n.outputs) for n in after.nodes] == [(n.op, n.inputs, n.outputs) for n in before.nodes]
    assert_same_function(before, after)


def test_conv_output_that_is_a_graph_output_not_folded(tmp_path):
    rng = np.random.default_rng(10)
    m = model(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), _bn("c", "y")],
        [f32("x", [1, 3, 4, 4])], [f32("c", [1, 2, 4, 4]), f32("y", [1, 2, 4, 4])],
        [init("w", rng.standard_normal((2, 3, 1, 1)).astype(np.float32))] + _bn_inits(rng, 2),
    )
    after = PASS(_load(m, tmp_path))
    assert _ops(after) == ["Conv", "BatchNormalization"]


def test_two_bns_on_one_conv_not_folded(tmp_path):
    rng = np.random.default_rng(11)
    m = model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
            _bn("c", "y1", prefix="a_", name="bn1"),
            _bn("c", "y2", prefix="b_", name="bn2"),
        ],
        [f32("x", [1, 3, 4, 4])], [f32("y1", [1, 2, 4, 4]), f32("y2", [1, 2, 4, 4])],
        [init("w", rng.standard_normal((2, 3, 1, 1)).astype(np.float32))] + _bn_inits(rng, 2, "a_") + _bn_inits(rng, 2, "b_"),
    )
    after = PASS(_load(m, tmp_path))
    assert _ops(after) == ["Conv", "BatchNormalization", "BatchNormalization"]


def test_non_constant_bn_params_not_folded(tmp_path):
    # the BN scale is a runtime input: the BN stays and gets its own kernel
    rng = np.random.default_rng(12)
    inits = [init("w", rng.standard_normal((2, 3, 3, 3)).astype(np.float32))] + _bn_inits(rng, 2)[1:]
    m = model(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]), _bn("c", "y")],
        [f32("x", [1, 3, 5, 5]), f32("bn_s", [2])], [f32("y", [1, 2, 5, 5])], inits,
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Conv", "BatchNormalization"]
    assert after.nodes[0].inputs == ("x", "w") and after.nodes[1].inputs[1] == "bn_s"
    r = _host_vs_ort(m, tmp_path)
    assert [n.op for n in r.graph.nodes] == ["Conv", "BatchNormalization"]


def test_non_constant_conv_weight_not_folded():
    g = Graph(
        "g",
        {
            "x": Tensor("x", (1, 2, 3, 3), "float32"),
            "w": Tensor("w", (2, 2, 1, 1), "float32"),  # runtime weight
            "c": Tensor("c", (1, 2, 3, 3), "float32"),
            "y": Tensor("y", (1, 2, 3, 3), "float32"),
            **{k: Tensor(k, (2,), "float32", np.ones(2, np.float32)) for k in ("s", "b", "m", "v")},
        },
        [Node("conv", "Conv", ("x", "w"), ("c",)), Node("bn", "BatchNormalization", ("c", "s", "b", "m", "v"), ("y",))],
        ["x", "w"],
        ["y"],
    )
    assert _ops(PASS(g)) == ["Conv", "BatchNormalization"]


def _ir_conv_bn(bn_attrs=None, bn_outputs=("y",)) -> Graph:
    rng = np.random.default_rng(13)
    t = {
        "x": Tensor("x", (1, 2, 3, 3), "float32"),
        "w": Tensor("w", (2, 2, 1, 1), "float32", rng.standard_normal((2, 2, 1, 1)).astype(np.float32)),
        "c": Tensor("c", (1, 2, 3, 3), "float32"),
        "y": Tensor("y", (1, 2, 3, 3), "float32"),
        "s": Tensor("s", (2,), "float32", np.array([0.5, 2.0], np.float32)),
        "b": Tensor("b", (2,), "float32", np.array([1.0, -1.0], np.float32)),
        "m": Tensor("m", (2,), "float32", np.array([0.1, 0.2], np.float32)),
        "v": Tensor("v", (2,), "float32", np.array([1.0, 4.0], np.float32)),
    }
    for o in bn_outputs[1:]:
        if o:
            t[o] = Tensor(o, (2,), "float32")
    nodes = [
        Node("conv", "Conv", ("x", "w"), ("c",), {}),
        Node("bn", "BatchNormalization", ("c", "s", "b", "m", "v"), tuple(bn_outputs), dict(bn_attrs or {})),
    ]
    return Graph("g", t, nodes, ["x"], ["y"])


def test_ir_conv_bn_folded_baseline():
    g = _ir_conv_bn()
    after = PASS(g)
    assert _ops(after) == ["Conv"]
    assert_same_function(g, after)


def test_training_mode_not_folded():
    assert _ops(PASS(_ir_conv_bn({"training_mode": 1}))) == ["Conv", "BatchNormalization"]


def test_bn_with_running_stat_outputs_not_folded():
    g = _ir_conv_bn({"training_mode": 0}, ("y", "running_mean", "running_var"))
    assert _ops(PASS(g)) == ["Conv", "BatchNormalization"]


def test_gemm_with_alpha_not_folded(tmp_path):
    rng = np.random.default_rng(14)
    m = model(
        [helper.make_node("Gemm", ["x", "w"], ["c"], name="fc", alpha=0.5), _bn("c", "y")],
        [f32("x", [2, 4])], [f32("y", [2, 3])],
        [init("w", rng.standard_normal((4, 3)).astype(np.float32))] + _bn_inits(rng, 3),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Gemm", "BatchNormalization"]
    assert_same_function(before, after)


def test_gemm_with_full_matrix_bias_not_folded(tmp_path):
    rng = np.random.default_rng(15)
    m = model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["c"], name="fc"), _bn("c", "y")],
        [f32("x", [2, 4])], [f32("y", [2, 3])],
        [init("w", rng.standard_normal((4, 3)).astype(np.float32)),
         init("b", rng.standard_normal((2, 3)).astype(np.float32))] + _bn_inits(rng, 3),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Gemm", "BatchNormalization"]
    assert_same_function(before, after)


def test_bn_after_non_foldable_op_kept(tmp_path):
    rng = np.random.default_rng(16)
    m = model(
        [helper.make_node("Relu", ["x"], ["r"]), _bn("r", "y")],
        [f32("x", [1, 3, 4, 4])], [f32("y", [1, 3, 4, 4])], _bn_inits(rng, 3),
    )
    after = PASS(_load(m, tmp_path))
    assert _ops(after) == ["Relu", "BatchNormalization"]


def test_bn_on_graph_input_kept(tmp_path):
    rng = np.random.default_rng(17)
    m = model([_bn("x", "y")], [f32("x", [1, 3, 4, 4])], [f32("y", [1, 3, 4, 4])], _bn_inits(rng, 3))
    after = PASS(_load(m, tmp_path))
    assert _ops(after) == ["BatchNormalization"]
    _host_vs_ort(m, tmp_path)


# ---- end to end ----------------------------------------------------------------

def test_conv_bn_relu_host_c_matches_onnxruntime(tmp_path):
    r = _host_vs_ort(conv_bn_relu(np.random.default_rng(20), c_in=3, c_out=8, hw=6), tmp_path)
    assert [n.op for n in r.graph.nodes] == ["Conv"]
    assert [e.op for e in r.graph.nodes[0].attrs["_epilogue"]] == ["Relu"]


@pytest.mark.parametrize("kind", ["convtranspose", "gemm_transB", "depthwise"])
def test_folded_variants_host_c_match_onnxruntime(kind, tmp_path):
    rng = np.random.default_rng(21)
    if kind == "convtranspose":
        m = model(
            [helper.make_node("ConvTranspose", ["x", "w"], ["c"], name="up", strides=[2, 2], group=2), _bn("c", "y")],
            [f32("x", [1, 4, 3, 3])], [f32("y", [1, 4, 7, 7])],
            [init("w", rng.standard_normal((4, 2, 3, 3)).astype(np.float32))] + _bn_inits(rng, 4),
        )
        folded = "ConvTranspose"
    elif kind == "gemm_transB":
        m = model(
            [helper.make_node("Gemm", ["x", "w", "b"], ["c"], name="fc", transB=1), _bn("c", "y")],
            [f32("x", [1, 6])], [f32("y", [1, 4])],
            [init("w", rng.standard_normal((4, 6)).astype(np.float32)),
             init("b", rng.standard_normal(4).astype(np.float32))] + _bn_inits(rng, 4),
        )
        folded = "Gemm"
    else:
        m = model(
            [helper.make_node("Conv", ["x", "w"], ["c"], name="dw", group=4, pads=[1, 1, 1, 1]), _bn("c", "y")],
            [f32("x", [1, 4, 5, 5])], [f32("y", [1, 4, 5, 5])],
            [init("w", rng.standard_normal((4, 1, 3, 3)).astype(np.float32))] + _bn_inits(rng, 4),
        )
        folded = "Conv"
    r = _host_vs_ort(m, tmp_path)
    assert [n.op for n in r.graph.nodes] == [folded]


# ---- known bugs ----------------------------------------------------------------

def test_colliding_node_names_fold_independently(tmp_path):
    # a valid model (onnxruntime accepts it): node 0 is explicitly named "Conv_2",
    # node 2 is unnamed and gets the frontend's default name "Conv_2" too
    rng = np.random.default_rng(30)
    m = model(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], name="Conv_2", pads=[1, 1, 1, 1]),
            _bn("c1", "n1", prefix="a_", name="bn1"),
            helper.make_node("Conv", ["n1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
            _bn("c2", "y", prefix="b_", name="bn2"),
        ],
        [f32("x", [1, 4, 4, 4])], [f32("y", [1, 4, 4, 4])],
        [init("w1", rng.standard_normal((4, 4, 3, 3)).astype(np.float32)),
         init("w2", rng.standard_normal((4, 4, 3, 3)).astype(np.float32))]
        + _bn_inits(rng, 4, "a_") + _bn_inits(rng, 4, "b_"),
    )
    before = _load(m, tmp_path)
    after = PASS(before)
    assert _ops(after) == ["Conv", "Conv"]
    assert after.nodes[0].inputs[1] != after.nodes[1].inputs[1]
    assert_same_function(before, after)
    _host_vs_ort(m, tmp_path)


def test_bn_not_folded_across_fused_activation(tmp_path):
    rng = np.random.default_rng(31)
    m = model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            _bn("r", "y"),
        ],
        [f32("x", [1, 3, 5, 5])], [f32("y", [1, 4, 5, 5])],
        [init("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
         init("b", rng.standard_normal(4).astype(np.float32))] + _bn_inits(rng, 4),
    )
    before = _load(m, tmp_path)
    fused = run_pipeline(before, ["fuse_activation"])
    assert [e.op for e in fused.nodes[0].attrs["_epilogue"]] == ["Relu"]
    after = PASS(fused)
    assert_same_function(before, after)
