"""Elementwise ops: binary arithmetic with broadcasting and unary activations."""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax import op as R

from edgec.ops.registry import OpDef, attr, broadcast_shape, elementwise_macs, register, same_shape


def _f32(v: float):
    return relax.const(float(v), "float32")


# ---- binary -------------------------------------------------------------------

def _binary_shape(node, ins):
    return [(broadcast_shape(ins[0].shape, ins[1].shape), ins[0].dtype)]


def _binary(name, np_fn, relax_fn):
    def ref(node, xs):
        a, b = xs
        y = np_fn(a, b)
        if name == "Div" and np.issubdtype(a.dtype, np.integer):
            y = np.trunc(a / b)
        return [np.asarray(y).astype(a.dtype)]

    def emit(ctx, node, args):
        return relax_fn(args[0], args[1])

    return OpDef(name, _binary_shape, ref, emit, elementwise_macs(), inplace=(0, 1))


register(
    _binary("Add", np.add, R.add),
    _binary("Sub", np.subtract, R.subtract),
    _binary("Mul", np.multiply, R.multiply),
    _binary("Div", np.divide, R.divide),
)


# ---- unary activations ------------------------------------------------------------

def _static_inputs_const(node, ins):
    for i, t in enumerate(ins[1:], start=1):
        if t is not None and t.data is None:
            return f"input {i} ('{t.name}') must be a compile-time constant"
    return None


def _unary(name, ref, emit, static_inputs=()):
    def reference(node, xs):
        return [np.asarray(ref(node, xs)).astype(xs[0].dtype)]

    return OpDef(
        name,
        same_shape,
        reference,
        emit,
        elementwise_macs(),
        static_inputs=static_inputs,
        inplace=(0,),
        activation=True,
        check=_static_inputs_const if static_inputs else None,
    )


def _clip_ref(node, xs):
    lo = xs[1] if len(xs) > 1 and xs[1] is not None else attr(node, "min", -np.inf)
    hi = xs[2] if len(xs) > 2 and xs[2] is not None else attr(node, "max", np.inf)
    return np.minimum(np.maximum(xs[0], lo), hi)


def _clip_emit(ctx, node, args):
    lo = ctx.static(1) if len(ctx.inputs) > 1 else None
    hi = ctx.static(2) if len(ctx.inputs) > 2 else None
    lo = float(lo) if lo is not None else float(attr(node, "min", -3.4028234663852886e38))
    hi = float(hi) if hi is not None else float(attr(node, "max", 3.4028234663852886e38))
    # ONNX: min > max sets every element to max; TVM's clip would give min
    lo = min(lo, hi)
    return R.clip(args[0], lo, hi)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def _hardsigmoid_emit(ctx, node, args):
    a, b = float(attr(node, "alpha", 0.2)), float(attr(node, "beta", 0.5))
    y = ctx.emit(R.add(ctx.emit(R.multiply(args[0], _f32(a))), _f32(b)))
    return R.clip(y, 0.0, 1.0)


def _hardswish_emit(ctx, node, args):
    x = args[0]
    y = ctx.emit(R.add(ctx.emit(R.multiply(x, _f32(1.0 / 6.0))), _f32(0.5)))
    y = ctx.emit(R.clip(y, 0.0, 1.0))
    return R.multiply(x, y)


def _leaky_emit(ctx, node, args):
    return R.nn.leakyrelu(args[0], float(attr(node, "alpha", 0.01)))


register(
    _unary("Relu", lambda n, xs: np.maximum(xs[0], 0), lambda c, n, a: R.nn.relu(a[0])),
    _unary("Clip", _clip_ref, _clip_emit, static_inputs=(1, 2)),
    _unary(
        "LeakyRelu",
        lambda n, xs: np.where(xs[0] >= 0, xs[0], xs[0] * attr(n, "alpha", 0.01)),
        _leaky_emit,
    ),
    _unary("Sigmoid", lambda n, xs: _sigmoid(xs[0]), lambda c, n, a: R.sigmoid(a[0])),
    _unary("Tanh", lambda n, xs: np.tanh(xs[0].astype(np.float64)), lambda c, n, a: R.tanh(a[0])),
    _unary(
        "HardSigmoid",
        lambda n, xs: np.clip(attr(n, "alpha", 0.2) * xs[0] + attr(n, "beta", 0.5), 0, 1),
        _hardsigmoid_emit,
    ),
    _unary(
        "HardSwish",
        lambda n, xs: xs[0] * np.clip(xs[0] / 6.0 + 0.5, 0, 1),
        _hardswish_emit,
    ),
)
