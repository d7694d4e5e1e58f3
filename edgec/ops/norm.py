"""Softmax, LayerNormalization, BatchNormalization (the unfoldable case)."""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax import op as R

from edgec.ops.registry import OpDef, attr, register, same_shape


def _legacy(node) -> bool:
    """Before opset 13, Softmax flattened the input to 2-D at `axis` (default 1)."""
    return int(attr(node, "_opset", 13)) < 13


def _softmax_axis(node, rank):
    return int(attr(node, "axis", 1 if _legacy(node) else -1)) % rank


def _softmax_ref(node, xs):
    x = xs[0].astype(np.float64)
    ax = _softmax_axis(node, x.ndim)
    if _legacy(node):
        shp = x.shape
        x2 = x.reshape(int(np.prod(shp[:ax])), -1)
        e = np.exp(x2 - x2.max(axis=1, keepdims=True))
        return [(e / e.sum(axis=1, keepdims=True)).reshape(shp).astype(xs[0].dtype)]
    e = np.exp(x - x.max(axis=ax, keepdims=True))
    return [(e / e.sum(axis=ax, keepdims=True)).astype(xs[0].dtype)]


def _softmax_emit(ctx, node, args):
    shp = ctx.inputs[0].shape
    ax = _softmax_axis(node, len(shp))
    if _legacy(node):  # opset < 13: flatten to 2-D at axis
        flat = (int(np.prod(shp[:ax])), int(np.prod(shp[ax:])))
        y = ctx.emit(R.nn.softmax(ctx.emit(R.reshape(args[0], flat)), axis=1))
        return R.reshape(y, shp)
    return R.nn.softmax(args[0], axis=ax)


def _softmax_macs(node, ins, outs):
    return 3 * outs[0].size


def _ln_axes(node, rank):
    ax = int(attr(node, "axis", -1)) % rank
    return list(range(ax, rank))


def _ln_ref(node, xs):
    x = xs[0].astype(np.float64)
    axes = tuple(_ln_axes(node, x.ndim))
    eps = float(attr(node, "epsilon", 1e-5))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps) * xs[1]
    if len(xs) > 2 and xs[2] is not None:
        y = y + xs[2]
    return [y.astype(xs[0].dtype)]


def _ln_emit(ctx, node, args):
    rank = len(ctx.inputs[0].shape)
    axes = _ln_axes(node, rank)
    norm_shape = ctx.inputs[0].shape[axes[0]:]
    gamma = args[1]
    if tuple(ctx.inputs[1].shape) != tuple(norm_shape):
        gamma = ctx.emit(R.broadcast_to(gamma, norm_shape))
    if len(args) > 2 and args[2] is not None:
        beta = args[2]
        if tuple(ctx.inputs[2].shape) != tuple(norm_shape):
            beta = ctx.emit(R.broadcast_to(beta, norm_shape))
    else:
        # an op, not a relax.const: a constant tensor would become an extra
        # kernel parameter after FuseTIR
        beta = ctx.emit(R.zeros(tuple(int(d) for d in norm_shape), "float32"))
    return R.nn.layer_norm(args[0], gamma, beta, axes=axes, epsilon=float(attr(node, "epsilon", 1e-5)))


def _ln_check(node, ins):
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        return "the Mean / InvStdDev outputs are not supported"
    if int(attr(node, "stash_type", 1)) != 1:
        return "stash_type other than float32"
    return None


def _bn_ref(node, xs):
    x, scale, bias, mean, var = (a.astype(np.float64) for a in xs[:5])
    shp = (1, -1) + (1,) * (x.ndim - 2)
    eps = float(attr(node, "epsilon", 1e-5))
    y = (x - mean.reshape(shp)) / np.sqrt(var.reshape(shp) + eps) * scale.reshape(shp) + bias.reshape(shp)
    return [y.astype(xs[0].dtype)]


def _bn_emit(ctx, node, args):
    x, scale, bias, mean, var = args[:5]
    rank = len(ctx.inputs[0].shape)
    shp = (1, ctx.inputs[0].shape[1]) + (1,) * (rank - 2)
    eps = relax.const(float(attr(node, "epsilon", 1e-5)), "float32")
    inv = ctx.emit(R.divide(scale, ctx.emit(R.sqrt(ctx.emit(R.add(var, eps))))))
    shift = ctx.emit(R.subtract(bias, ctx.emit(R.multiply(mean, inv))))
    y = ctx.emit(R.multiply(x, ctx.emit(R.reshape(inv, shp))))
    return R.add(y, ctx.emit(R.reshape(shift, shp)))


def _bn_check(node, ins):
    if attr(node, "training_mode", 0):
        return "training_mode=1"
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        return "running mean/var outputs (training) are not supported"
    return None


def _per_element(k):
    return lambda node, ins, outs: k * outs[0].size


register(
    OpDef("Softmax", same_shape, _softmax_ref, _softmax_emit, _softmax_macs),
    OpDef("LayerNormalization", same_shape, _ln_ref, _ln_emit, _per_element(4), check=_ln_check),
    OpDef("BatchNormalization", same_shape, _bn_ref, _bn_emit, _per_element(2), check=_bn_check),
)
