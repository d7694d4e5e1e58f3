"""Each op's NumPy reference (edgec/ops/*.py) against onnx.reference.ReferenceEvaluator.

The references fold constants in the frontend and are the ground truth of the
op bundles, so they are checked against an independent implementation on a few
random cases per op (shapes and attributes covering the corners: padding,
ceil mode, groups, negative axes/steps, legacy opsets, ...).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from edgec.frontend.onnx_frontend import _attr_value
from edgec.ir import Node
from edgec.ops.registry import all_ops, lookup

_RNG = np.random.default_rng(20240611)


def _f(*shape):
    return _RNG.standard_normal(shape).astype(np.float32)


def _pos(*shape):
    return (np.abs(_RNG.standard_normal(shape)) + 0.5).astype(np.float32)


def _i(*v):
    return np.asarray(v, np.int64)


def _c(*v):
    return np.asarray(v, np.float32)


# (op, opset, inputs (None = absent optional input), attributes)
CASES: list[tuple[str, int, list, dict]] = [
    # nn
    ("Conv", 11, [_f(1, 3, 7, 8), _f(4, 3, 3, 3), _f(4)], dict(pads=[1, 0, 2, 1], strides=[2, 1])),
    ("Conv", 11, [_f(2, 4, 9, 9), _f(4, 1, 3, 3)], dict(group=4, dilations=[2, 2], auto_pad="SAME_UPPER")),
    ("Conv", 11, [_f(1, 4, 6, 5), _f(6, 2, 2, 3), _f(6)], dict(group=2, auto_pad="SAME_LOWER", strides=[2, 2])),
    ("Conv", 11, [_f(2, 3, 12), _f(5, 3, 4)], dict(pads=[2, 1], strides=[3], dilations=[2])),
    ("ConvTranspose", 11, [_f(1, 2, 3, 4), _f(2, 3, 3, 3), _f(3)], dict(strides=[2, 2], pads=[1, 0, 0, 1])),
    ("ConvTranspose", 11, [_f(1, 4, 3, 3), _f(4, 2, 2, 3)], dict(group=2, strides=[3, 2], output_padding=[1, 1])),
    ("ConvTranspose", 11, [_f(1, 1, 3, 3), _f(1, 2, 3, 3)], dict(strides=[3, 2], output_shape=[10, 8])),
    ("ConvTranspose", 11, [_f(1, 2, 4, 3), _f(2, 3, 3, 3)], dict(strides=[2, 2], output_shape=[8, 6])),
    ("ConvTranspose", 11, [_f(1, 2, 3, 3), _f(2, 2, 3, 3)], dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    ("ConvTranspose", 11, [_f(2, 3, 5), _f(3, 2, 3)], dict(strides=[2], dilations=[2], pads=[1, 2])),
    ("Gemm", 11, [_f(3, 4), _f(4, 5), _f(5)], {}),
    ("Gemm", 11, [_f(4, 3), _f(5, 4), _f(3, 1)], dict(transA=1, transB=1, alpha=0.5, beta=-2.0)),
    ("Gemm", 11, [_f(2, 3), _f(3, 4)], dict(alpha=3.0)),
    ("MatMul", 13, [_f(2, 3, 4), _f(4, 5)], {}),
    ("MatMul", 13, [_f(4), _f(2, 4, 3)], {}),
    ("MatMul", 13, [_f(2, 1, 3, 4), _f(4, 5)], {}),
    ("MatMul", 13, [_f(3, 1, 2, 4), _f(2, 4, 6)], {}),
    # elementwise
    ("Add", 14, [_f(2, 3, 4), _f(4)], {}),
    ("Sub", 14, [_f(3, 1), _f(2, 1, 4)], {}),
    ("Mul", 14, [_f(2, 3), _f(1)], {}),
    ("Div", 14, [_f(2, 3, 4), _pos(3, 1)], {}),
    ("Relu", 14, [_f(3, 4)], {}),
    ("Clip", 13, [_f(3, 4), _c(-0.5).reshape(()), _c(0.7).reshape(())], {}),
    ("Clip", 13, [_f(3, 4), None, _c(0.2).reshape(())], {}),
    ("Clip", 13, [_f(3, 4), _c(1.0).reshape(()), _c(-1.0).reshape(())], {}),
    ("LeakyRelu", 16, [_f(3, 4)], dict(alpha=0.2)),
    ("Sigmoid", 13, [_f(3, 4) * 5], {}),
    ("Tanh", 13, [_f(3, 4) * 3], {}),
    ("HardSigmoid", 6, [_f(3, 4) * 4], dict(alpha=0.3, beta=0.6)),
    ("HardSwish", 14, [_f(3, 4) * 5], {}),
    # pooling / reductions
    ("MaxPool", 12, [_f(1, 2, 7, 6)], dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 1, 1], ceil_mode=1)),
    ("MaxPool", 12, [_f(1, 2, 8, 8)], dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 1], auto_pad="SAME_UPPER")),
    ("MaxPool", 12, [_f(2, 3, 10)], dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    ("AveragePool", 11, [_f(1, 2, 6, 7)], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("AveragePool", 11, [_f(1, 2, 6, 7)], dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 0, 1], ceil_mode=1)),
    ("AveragePool", 11, [_f(1, 2, 5, 6)], dict(kernel_shape=[2, 3], strides=[1, 2], auto_pad="SAME_LOWER", count_include_pad=1)),
    ("AveragePool", 11, [_f(1, 3, 10)], dict(kernel_shape=[4], strides=[3], pads=[2, 1])),
    ("GlobalAveragePool", 1, [_f(2, 3, 4, 5)], {}),
    ("GlobalAveragePool", 1, [_f(2, 3, 7)], {}),
    ("ReduceMean", 13, [_f(2, 3, 4, 5)], dict(axes=[-1, 1], keepdims=0)),
    ("ReduceMean", 13, [_f(2, 3, 4)], {}),
    ("ReduceMean", 18, [_f(2, 3, 4), _i(0, -1)], dict(keepdims=1)),
    ("ReduceMean", 18, [_f(2, 3), _i()], dict(noop_with_empty_axes=1)),
    # normalization
    ("Softmax", 13, [_f(2, 3, 4)], dict(axis=1)),
    ("Softmax", 13, [_f(2, 3, 4) * 10], {}),
    ("Softmax", 11, [_f(2, 3, 4)], dict(axis=1)),
    ("Softmax", 11, [_f(2, 3, 2, 2)], {}),
    ("LayerNormalization", 17, [_f(2, 3, 4), _f(3, 4)], dict(axis=1, epsilon=1e-3)),
    ("LayerNormalization", 17, [_f(2, 5, 8), _f(8), _f(8)], {}),
    ("BatchNormalization", 15, [_f(2, 3, 4, 5), _f(3), _f(3), _f(3), _pos(3)], dict(epsilon=1e-3)),
    ("BatchNormalization", 15, [_f(4, 3), _f(3), _f(3), _f(3), _pos(3)], {}),
    # shapes
    ("Reshape", 14, [_f(2, 3, 4), _i(0, -1, 2)], {}),
    ("Reshape", 14, [_f(2, 3, 4), _i(4, 0, 2)], dict(allowzero=0)),
    ("Flatten", 13, [_f(2, 3, 4, 5)], dict(axis=-1)),
    ("Flatten", 13, [_f(2, 3, 4, 5)], dict(axis=-4)),
    ("Flatten", 13, [_f(2, 3, 4)], dict(axis=0)),
    ("Flatten", 13, [_f(2, 3, 4)], dict(axis=3)),
    ("Transpose", 13, [_f(2, 3, 4)], {}),
    ("Transpose", 13, [_f(2, 3, 4, 5)], dict(perm=[0, 2, 3, 1])),
    ("Squeeze", 13, [_f(3, 1, 4, 1), _i(1, -1)], {}),
    ("Squeeze", 13, [_f(1, 3, 1, 4)], {}),
    ("Squeeze", 11, [_f(3, 1, 4, 1)], dict(axes=[-1])),
    ("Unsqueeze", 13, [_f(3, 4), _i(0, -1)], {}),
    ("Unsqueeze", 11, [_f(3, 4)], dict(axes=[1, 3])),
    ("Concat", 13, [_f(2, 3), _f(2, 5), _f(2, 1)], dict(axis=-1)),
    ("Concat", 13, [_f(2, 3), _f(4, 3)], dict(axis=0)),
    ("Identity", 16, [_f(2, 3)], {}),
    ("Dropout", 13, [_f(2, 3), _c(0.3).reshape(()), np.asarray(False)], {}),
    ("Shape", 15, [_f(2, 3, 4)], dict(start=1, end=-1)),
    ("Size", 13, [_f(2, 3, 4)], {}),
    # Slice
    ("Slice", 13, [_f(20, 10, 5), _i(0, 0), _i(3, 10), _i(0, 1), _i(1, 1)], {}),
    ("Slice", 13, [_f(20, 10, 5), _i(20, 10, 4), _i(0, 0, 1), _i(0, 1, 2), _i(-1, -3, -2)], {}),
    ("Slice", 13, [_f(4, 6, 5), _i(-1, 4), _i(-(2 ** 63), 0), _i(1, 2), _i(-2, -1)], {}),
    ("Slice", 13, [_f(4, 6), _i(1, -4), _i(2 ** 62, -1)], {}),
    ("Slice", 13, [_f(2, 7, 9), _i(0, 1, 8), _i(2, 7, -100), _i(0, -2, -1), _i(1, 3, -4)], {}),
    ("Slice", 13, [_f(20, 10, 5), _i(1000), _i(1000), _i(1), _i(1)], {}),
    ("Slice", 11, [_f(5, 6), _i(-10, 2), _i(10, -10), _i(0, 1), _i(2, -1)], {}),
    # Pad
    ("Pad", 11, [_f(1, 2, 3, 4), _i(0, 0, 1, 2, 0, 0, 2, 1), _c(-2.5).reshape(())], dict(mode="constant")),
    ("Pad", 11, [_f(1, 2, 3, 4), _i(0, 0, 2, 3, 0, 0, 1, 2)], dict(mode="reflect")),
    ("Pad", 11, [_f(1, 2, 3, 4), _i(0, 1, 2, 3, 0, 0, 4, 1)], dict(mode="edge")),
    ("Pad", 18, [_f(2, 3, 5), _i(1, 4, 2, 0), None, _i(1, -1)], dict(mode="reflect")),
    ("Pad", 19, [_f(1, 3, 4), _i(0, 2, 3, 0, 1, 4)], dict(mode="wrap")),
    ("Pad", 19, [_f(2, 3), _i(0, 0, 0, 0)], dict(mode="edge")),
]

# Resize: every supported mode x coordinate transform, scales and sizes,
# upsampling and downsampling, axes and keep_aspect_ratio_policy.
_X44 = _f(1, 2, 4, 5)
for _mode, _nm in [("nearest", m) for m in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")] + [("linear", None)]:
    for _ctm in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"):
        _attrs = dict(mode=_mode, coordinate_transformation_mode=_ctm)
        if _nm:
            _attrs["nearest_mode"] = _nm
        CASES.append(("Resize", 19, [_X44, None, _c(1, 1, 2.5, 0.6)], _attrs))
        CASES.append(("Resize", 19, [_X44, None, None, _i(1, 2, 9, 3)], _attrs))
        CASES.append(("Resize", 19, [_X44, None, None, _i(1, 2, 3, 1)], _attrs))
CASES += [
    ("Resize", 11, [_f(1, 2, 3, 4), np.zeros(0, np.float32), _c(1, 1, 2, 1.5)], dict(mode="nearest")),
    ("Resize", 11, [_f(1, 2, 5, 4), np.zeros(0, np.float32), np.zeros(0, np.float32), _i(1, 2, 8, 3)], dict(mode="linear")),
    ("Resize", 13, [_f(2, 5, 4), None, _c(1, 1.6, 2)], dict(mode="linear")),
    ("Resize", 19, [_f(1, 3, 4, 2), None, _c(2, 3)], dict(mode="nearest", axes=[1, 2])),
    ("Resize", 19, [_f(1, 1, 2, 4), None, None, _i(7, 8)], dict(mode="nearest", axes=[2, 3], keep_aspect_ratio_policy="not_larger")),
    ("Resize", 19, [_f(1, 1, 2, 4), None, None, _i(1, 3)], dict(mode="linear", axes=[2, 3], keep_aspect_ratio_policy="not_smaller")),
]


def _ids():
    seen: dict[str, int] = {}
    out = []
    for op, opset, _, attrs in CASES:
        base = f"{op}-opset{opset}"
        seen[base] = seen.get(base, 0) + 1
        out.append(f"{base}-{seen[base]}")
    return out


def _ort_run(m: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    m = onnx.ModelProto.FromString(m.SerializeToString())
    for o in m.graph.output:  # onnxruntime wants a typed output (the ops here keep the input type)
        o.type.tensor_type.elem_type = onnx.TensorProto.FLOAT

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return [np.asarray(r) for r in sess.run(None, feeds)]


def _use_ort(op: str, opset: int) -> bool:
    # onnx.reference implements Softmax with the opset-13 meaning for every
    # opset (no flattening at `axis` before 13): onnxruntime is the oracle there.
    return op == "Softmax" and opset < 13


def _onnx_reference(op: str, opset: int, xs: list, attrs: dict) -> tuple[onnx.NodeProto, list[np.ndarray]]:
    """onnx.reference's result; onnxruntime's where onnx.reference is known wrong
    (`_use_ort`) or raises (it fails on grouped ConvTranspose, ConvTranspose
    with output_shape and Resize with non-trailing axes)."""
    names = [f"in{k}" if x is not None else "" for k, x in enumerate(xs)]
    while names and names[-1] == "":
        names.pop()
    n_out = 1
    node = helper.make_node(op, names, [f"out{k}" for k in range(n_out)], **attrs)
    feeds = {n: x for n, x in zip(names, xs) if n}
    g = helper.make_graph(
        [node], "ref",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape) for n, x in feeds.items()],
        [helper.make_tensor_value_info("out0", onnx.TensorProto.UNDEFINED, None)],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = helper.find_min_ir_version_for(list(m.opset_import))  # onnxruntime lags behind onnx
    if _use_ort(op, opset):
        return node, _ort_run(m, feeds)
    try:
        return node, [np.asarray(r) for r in ReferenceEvaluator(m).run(None, feeds)]
    except Exception:  # noqa: BLE001
        return node, _ort_run(m, feeds)


def _edgec_node(proto: onnx.NodeProto, opset: int) -> Node:
    attrs = {a.name: _attr_value(a) for a in proto.attribute}
    attrs["_opset"] = opset
    return Node("n", proto.op_type, tuple(proto.input), tuple(proto.output), attrs)


@pytest.mark.parametrize("op,opset,xs,attrs", CASES, ids=_ids())
def test_reference_matches_onnx(op, opset, xs, attrs):
    proto, want = _onnx_reference(op, opset, xs, attrs)
    node = _edgec_node(proto, opset)
    d = lookup(op)
    assert d is not None, op
    xs = xs[: len(proto.input)]
    got = d.reference(node, [x if n else None for x, n in zip(xs, proto.input)])
    assert len(got) >= 1
    g, w = np.asarray(got[0]), np.asarray(want[0])
    assert g.shape == w.shape, f"shape {g.shape} != onnx.reference {w.shape}"
    assert g.dtype == w.dtype, f"dtype {g.dtype} != onnx.reference {w.dtype}"
    if g.dtype.kind == "f":
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("op,opset,xs,attrs", [c for c in CASES if c[0] not in ("Shape", "Size")],
                         ids=[i for i, c in zip(_ids(), CASES) if c[0] not in ("Shape", "Size")])
def test_shape_function_matches_reference(op, opset, xs, attrs):
    """The shape function agrees with the reference's output shape."""
    from edgec.ir import Tensor

    proto, _ = _onnx_reference(op, opset, xs, attrs)
    node = _edgec_node(proto, opset)
    d = lookup(op)
    xs = xs[: len(proto.input)]
    ins = [None if x is None or not n else Tensor(n, tuple(x.shape), x.dtype.name, x if k in d.static_inputs else None)
           for k, (x, n) in enumerate(zip(xs, proto.input))]
    ref = d.reference(node, [x if n else None for x, n in zip(xs, proto.input)])[0]
    (shape, dtype), *_ = d.shape(node, ins)
    assert tuple(shape) == ref.shape
    assert dtype == ref.dtype.name


def test_every_op_is_covered():
    covered = {c[0] for c in CASES}
    ops = {d.op for d in all_ops() if d.domain == ""}
    assert ops <= covered, f"ops without a reference check: {sorted(ops - covered)}"


def test_resize_rejects_what_it_cannot_compile():
    """Modes TVM / edgec cannot do are reported by check(), not miscompiled."""
    from edgec.ir import Tensor

    d = lookup("Resize")
    x = Tensor("x", (1, 1, 4, 4), "float32")
    sc = Tensor("s", (4,), "float32", _c(1, 1, 2, 2))
    for attrs, why in [
        (dict(mode="cubic"), "cubic"),
        (dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize"), "tf_crop_and_resize"),
    ]:
        node = Node("r", "Resize", ("x", "", "s"), ("y",), {**attrs, "_opset": 19})
        assert why in d.check(node, [x, None, sc])
    node = Node("r", "Resize", ("x", "", "s"), ("y",), {"mode": "linear", "antialias": 1, "_opset": 19})
    down = Tensor("s", (4,), "float32", _c(1, 1, 0.5, 0.5))
    assert "antialias" in d.check(node, [x, None, down])
    assert d.check(node, [x, None, sc]) is None  # antialias is a no-op when upsampling
    runtime = Tensor("s", (4,), "float32")
    assert "compile-time constant" in d.check(node, [x, None, runtime])


def test_pad_rejects_what_it_cannot_compile():
    from edgec.ir import Tensor

    d = lookup("Pad")
    x = Tensor("x", (1, 3), "float32")
    for mode, pads, why in [
        ("reflect", _i(0, 3, 0, 0), "reflect padding"),
        ("wrap", _i(0, 4, 0, 0), "wrap padding"),
        ("edge", _i(0, -1, 0, 0), "negative pads"),
        ("constant", _i(0, -2, 0, -1), "empty"),
    ]:
        node = Node("p", "Pad", ("x", "p"), ("y",), {"mode": mode, "_opset": 19})
        assert why in d.check(node, [x, Tensor("p", (4,), "int64", pads)])
    ok = Node("p", "Pad", ("x", "p"), ("y",), {"mode": "reflect", "_opset": 19})
    assert d.check(ok, [x, Tensor("p", (4,), "int64", _i(0, 2, 0, 2))]) is None


def test_resize_negative_axes_mean_the_same():
    """Negative Resize axes count from the back (onnx.reference crashes on them
    and onnxruntime 1.31 returns a wrongly sized output, so no oracle here)."""
    x = _f(1, 2, 3, 4)
    d = lookup("Resize")
    outs = []
    for axes in ([2, 3], [-2, -1]):
        node = Node("r", "Resize", ("x", "", "", "sz"), ("y",),
                    {"mode": "linear", "axes": axes, "keep_aspect_ratio_policy": "not_smaller", "_opset": 19})
        outs.append(d.reference(node, [x, None, None, _i(5, 3)])[0])
    assert outs[0].shape == (1, 2, 5, 7)
    np.testing.assert_array_equal(outs[0], outs[1])
