"""MaxPool, AveragePool, GlobalAveragePool, ReduceMean."""

from __future__ import annotations

import numpy as np
from tvm.relax import op as R

from edgec.ops.common import pad_spatial, window, windows_view
from edgec.ops.registry import OpDef, attr, register


def _pool_window(node, x_shape):
    return window(node, x_shape[2:], tuple(attr(node, "kernel_shape")), bool(attr(node, "ceil_mode", 0)))


def _pool_shape(node, ins):
    w = _pool_window(node, ins[0].shape)
    return [(ins[0].shape[:2] + w.out, ins[0].dtype)]


def _pool_macs(node, ins, outs):
    return outs[0].size * int(np.prod(attr(node, "kernel_shape")))


def _extend_for_ceil(x, w, value):
    """Pad the end so every (ceil-mode) window lies inside the array."""
    need = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(w.out, w.strides, w.kernel, w.dilations)]
    have = [i + b + e for i, b, e in zip(x.shape[2:], w.pads_begin, w.pads_end)]
    extra = [max(0, n - h) for n, h in zip(need, have)]
    xp = pad_spatial(x, w, value)
    if any(extra):
        xp = np.pad(xp, [(0, 0), (0, 0)] + [(0, e) for e in extra], constant_values=value)
    return xp


def _maxpool_ref(node, xs):
    x = xs[0]
    w = _pool_window(node, x.shape)
    v = windows_view(_extend_for_ceil(x, w, -np.inf), w)
    axes = tuple(range(2 + len(w.out), v.ndim))
    return [v.max(axis=axes).astype(x.dtype)]


def _avgpool_ref(node, xs):
    x = xs[0].astype(np.float64)
    w = _pool_window(node, x.shape)
    axes = tuple(range(2 + len(w.out), 2 + 2 * len(w.out)))
    s = windows_view(_extend_for_ceil(x, w, 0.0), w).sum(axis=axes)
    if attr(node, "count_include_pad", 0):
        # the count covers real + explicit padding, never the ceil-mode overhang
        ones = np.pad(np.ones((1, 1) + x.shape[2:]), [(0, 0), (0, 0)] + list(zip(w.pads_begin, w.pads_end)), constant_values=1.0)
        cnt = windows_view(_extend_for_ceil_ones(ones, w), w).sum(axis=axes)
    else:
        ones = np.ones((1, 1) + x.shape[2:])
        cnt = windows_view(_extend_for_ceil(ones, w, 0.0), w).sum(axis=axes)
    return [(s / cnt).astype(xs[0].dtype)]


def _extend_for_ceil_ones(ones_padded, w):
    need = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(w.out, w.strides, w.kernel, w.dilations)]
    extra = [max(0, n - h) for n, h in zip(need, ones_padded.shape[2:])]
    return np.pad(ones_padded, [(0, 0), (0, 0)] + [(0, e) for e in extra], constant_values=0.0)


def _pool_check(node, ins):
    if len(ins[0].shape) not in (3, 4):
        return "only 1-D and 2-D pooling is supported"
    # storage_order only changes the Indices output, which is rejected below
    return None


def _pool_emit(kind):
    def emit(ctx, node, args):
        x = ctx.inputs[0]
        w = _pool_window(node, x.shape)
        two_d = len(x.shape) == 4
        fn = {
            ("max", True): R.nn.max_pool2d,
            ("max", False): R.nn.max_pool1d,
            ("avg", True): R.nn.avg_pool2d,
            ("avg", False): R.nn.avg_pool1d,
        }[(kind, two_d)]
        kw = dict(
            pool_size=w.kernel,
            strides=w.strides,
            padding=w.pads,
            dilation=w.dilations,
            ceil_mode=bool(attr(node, "ceil_mode", 0)),
        )
        if kind == "avg":
            kw["count_include_pad"] = bool(attr(node, "count_include_pad", 0))
        return fn(args[0], **kw)

    return emit


def _maxpool_check(node, ins):
    if len(node.outputs) > 1 and node.outputs[1]:
        return "the Indices output is not supported"
    return _pool_check(node, ins)


# ---- global / reduce ------------------------------------------------------------

def _gap_shape(node, ins):
    s = ins[0].shape
    return [(s[:2] + (1,) * (len(s) - 2), ins[0].dtype)]


def _gap_ref(node, xs):
    x = xs[0]
    return [x.astype(np.float64).mean(axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype)]


def _gap_emit(ctx, node, args):
    return R.mean(args[0], axis=list(range(2, len(ctx.inputs[0].shape))), keepdims=True)


def _reduce_axes(node, ins, xs=None):
    rank = len(ins[0].shape)
    axes = attr(node, "axes", None)
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        data = xs[1] if xs is not None else ins[1].data
        axes = None if data is None else [int(a) for a in np.asarray(data).reshape(-1)]
    if axes is None or len(axes) == 0:
        if attr(node, "noop_with_empty_axes", 0):
            return []
        return list(range(rank))
    return sorted(int(a) % rank for a in axes)


def _rmean_shape(node, ins):
    axes = _reduce_axes(node, ins)
    keep = attr(node, "keepdims", 1)
    s = ins[0].shape
    out = tuple((1 if i in axes else d) for i, d in enumerate(s)) if keep else tuple(d for i, d in enumerate(s) if i not in axes)
    return [(out, ins[0].dtype)]


class _Shim:
    def __init__(self, arr):
        self.shape = arr.shape
        self.data = None


def _rmean_ref(node, xs):
    axes = _reduce_axes(node, [_Shim(xs[0])], xs)
    if not axes:
        return [xs[0]]
    return [xs[0].astype(np.float64).mean(axis=tuple(axes), keepdims=bool(attr(node, "keepdims", 1))).astype(xs[0].dtype)]


def _rmean_emit(ctx, node, args):
    axes = _reduce_axes(node, ctx.inputs)
    if not axes:
        return R.reshape(args[0], ctx.inputs[0].shape)
    return R.mean(args[0], axis=axes, keepdims=bool(attr(node, "keepdims", 1)))


def _rmean_check(node, ins):
    if len(ins) > 1 and ins[1] is not None and ins[1].data is None:
        return f"'axes' must be a compile-time constant (it is computed at run time from '{ins[1].name}')"
    return None


def _reduce_macs(node, ins, outs):
    return ins[0].size


register(
    OpDef("MaxPool", _pool_shape, _maxpool_ref, _pool_emit("max"), _pool_macs, check=_maxpool_check),
    OpDef("AveragePool", _pool_shape, _avgpool_ref, _pool_emit("avg"), _pool_macs, check=_pool_check),
    OpDef("GlobalAveragePool", _gap_shape, _gap_ref, _gap_emit, _reduce_macs),
    OpDef("ReduceMean", _rmean_shape, _rmean_ref, _rmean_emit, _reduce_macs, static_inputs=(1,), check=_rmean_check),
)
