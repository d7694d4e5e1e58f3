"""Conv, ConvTranspose, Gemm, MatMul."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tvm import relax
from tvm.relax import op as R

from edgec.ir import Node, Tensor
from edgec.ops.common import pad_spatial, window, windows_view
from edgec.ops.registry import OpDef, attr, register


# ---- Conv ------------------------------------------------------------------

def _conv_window(node: Node, x: Sequence[int], w: Sequence[int]):
    kernel = tuple(attr(node, "kernel_shape", w[2:]))
    return window(node, x[2:], kernel)


def _conv_shape(node, ins):
    x, w = ins[0], ins[1]
    win = _conv_window(node, x.shape, w.shape)
    return [((x.shape[0], w.shape[0]) + win.out, x.dtype)]


def _conv_macs(node, ins, outs):
    w = ins[1]
    return outs[0].size * int(np.prod(w.shape[1:]))


def _conv_ref(node, xs):
    x, w = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    g = attr(node, "group", 1)
    win = _conv_window(node, x.shape, w.shape)
    v = windows_view(pad_spatial(x, win), win)  # N, C, *out, *k
    n, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // g, m // g
    outs = []
    for gi in range(g):
        vg = v[:, gi * cg : (gi + 1) * cg]
        wg = w[gi * mg : (gi + 1) * mg]
        # sum over channel and kernel positions
        vg = np.moveaxis(vg, 1, 1 + len(win.out))  # N, *out, C, *k
        vg = vg.reshape(n, *win.out, -1).astype(np.float64)
        outs.append(np.tensordot(vg, wg.reshape(mg, -1).astype(np.float64), axes=([-1], [1])))
    y = np.concatenate(outs, axis=-1)  # N, *out, M
    y = np.moveaxis(y, -1, 1)
    if b is not None:
        y = y + b.reshape((1, m) + (1,) * len(win.out))
    return [y.astype(x.dtype)]


def _conv_check(node, ins):
    if len(ins[0].shape) not in (3, 4):
        return f"only 1-D and 2-D convolutions are supported (input rank {len(ins[0].shape)})"
    return None


def _bias_shape(rank: int, c: int) -> tuple[int, ...]:
    return (1, c) + (1,) * (rank - 2)


def _conv_relax(ctx, node, args):
    x, w = args[0], args[1]
    xt, wt = ctx.inputs[0], ctx.inputs[1]
    win = _conv_window(node, xt.shape, wt.shape)
    g = attr(node, "group", 1)
    if len(xt.shape) == 4:
        y = ctx.emit(
            R.nn.conv2d(x, w, strides=win.strides, padding=win.pads, dilation=win.dilations, groups=g)
        )
    else:
        y = ctx.emit(
            R.nn.conv1d(x, w, strides=win.strides, padding=win.pads, dilation=win.dilations, groups=g)
        )
    if len(args) > 2 and args[2] is not None:
        b = ctx.emit(R.reshape(args[2], _bias_shape(len(xt.shape), wt.shape[0])))
        y = ctx.emit(R.add(y, b))
    return y


# ---- ConvTranspose -----------------------------------------------------------

def _convt_geometry(node, x_shape, w_shape):
    nd = len(x_shape) - 2
    k = tuple(attr(node, "kernel_shape", w_shape[2:]))
    s = tuple(attr(node, "strides", [1] * nd))
    d = tuple(attr(node, "dilations", [1] * nd))
    op = tuple(attr(node, "output_padding", [0] * nd))
    g = attr(node, "group", 1)
    auto_pad = attr(node, "auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    out_shape = attr(node, "output_shape", None)
    if out_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = list(out_shape[-nd:]) if out_shape is not None else [i * st for i, st in zip(x_shape[2:], s)]
        total = [st * (i - 1) + o + ((kk - 1) * dd + 1) - t for i, st, o, kk, dd, t in zip(x_shape[2:], s, op, k, d, target)]
        # ONNX: SAME_UPPER puts the smaller half first; SAME_LOWER and NOTSET
        # (output_shape given) put the larger half first. A negative total
        # (output_shape larger than the full result) extends the output.
        if auto_pad == "SAME_UPPER":
            pb = [t // 2 for t in total]
        else:
            pb = [t - t // 2 for t in total]
        pe = [t - b for t, b in zip(total, pb)]
    elif auto_pad == "VALID":
        pb = pe = [0] * nd
    else:
        pads = list(attr(node, "pads", [0] * (2 * nd)))
        pb, pe = pads[:nd], pads[nd:]
    out = [st * (i - 1) + o + ((kk - 1) * dd + 1) - b - e for i, st, o, kk, dd, b, e in zip(x_shape[2:], s, op, k, d, pb, pe)]
    return k, s, d, tuple(op), g, tuple(pb), tuple(pe), tuple(out)


def _convt_shape(node, ins):
    x, w = ins[0], ins[1]
    *_, g, _, _, out = _convt_geometry(node, x.shape, w.shape)
    return [((x.shape[0], w.shape[1] * g) + out, x.dtype)]


def _convt_macs(node, ins, outs):
    x, w = ins[0], ins[1]
    return x.size * int(np.prod(w.shape[1:]))


def _convt_ref(node, xs):
    x, w = xs[0].astype(np.float64), xs[1].astype(np.float64)
    b = xs[2] if len(xs) > 2 else None
    k, s, d, op, g, pb, pe, out = _convt_geometry(node, x.shape, w.shape)
    n, c = x.shape[:2]
    mg = w.shape[1]
    cg = c // g
    nd = len(k)
    full = [st * (i - 1) + o + (kk - 1) * dd + 1 for i, st, o, kk, dd in zip(x.shape[2:], s, op, k, d)]
    y = np.zeros((n, mg * g) + tuple(full))
    for gi in range(g):
        xg = x[:, gi * cg : (gi + 1) * cg]
        wg = w[gi * cg : (gi + 1) * cg]
        for kidx in np.ndindex(*k):
            contrib = np.einsum("nc...,cm->nm...", xg, wg[(slice(None), slice(None)) + kidx])
            sl = tuple(slice(ki * dd, ki * dd + st * (i - 1) + 1, st) for ki, dd, st, i in zip(kidx, d, s, x.shape[2:]))
            y[(slice(None), slice(gi * mg, (gi + 1) * mg)) + sl] += contrib
    # negative pads extend the output with zeros (before the bias)
    ext = [(max(0, -b_), max(0, -e_)) for b_, e_ in zip(pb, pe)]
    y = np.pad(y, [(0, 0), (0, 0)] + ext)
    crop = tuple(slice(max(0, b_), max(0, b_) + o) for b_, o in zip(pb, out))
    y = y[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return [y.astype(xs[0].dtype)]


def _convt_check(node, ins):
    if len(ins[0].shape) not in (3, 4):
        return "only 1-D and 2-D transposed convolutions are supported"
    k, s, d, op, g, pb, pe, out = _convt_geometry(node, ins[0].shape, ins[1].shape)
    if any(o <= 0 for o in out):
        return f"the output {tuple(out)} is empty"
    return None


def _convt_relax(ctx, node, args):
    x, w = args[0], args[1]
    xt, wt = ctx.inputs[0], ctx.inputs[1]
    k, s, d, op, g, pb, pe, out = _convt_geometry(node, xt.shape, wt.shape)
    fn = R.nn.conv2d_transpose if len(xt.shape) == 4 else R.nn.conv1d_transpose
    pos = tuple(max(0, p) for p in pb + pe)
    y = ctx.emit(fn(x, w, strides=s, padding=pos, output_padding=op, dilation=d, groups=g))
    if any(p < 0 for p in pb + pe):  # output larger than the full result: zeros around it
        ext = [0, 0, 0, 0] + [v for b_, e_ in zip(pb, pe) for v in (max(0, -b_), max(0, -e_))]
        y = ctx.emit(R.nn.pad(y, ext, "constant", 0.0))
    if len(args) > 2 and args[2] is not None:
        b = ctx.emit(R.reshape(args[2], _bias_shape(len(xt.shape), wt.shape[1] * g)))
        y = ctx.emit(R.add(y, b))
    return y


# ---- Gemm / MatMul ----------------------------------------------------------

def _gemm_dims(node, a_shape, b_shape):
    ta, tb = attr(node, "transA", 0), attr(node, "transB", 0)
    m, k = (a_shape[1], a_shape[0]) if ta else tuple(a_shape)
    n = b_shape[0] if tb else b_shape[1]
    return m, k, n


def _gemm_shape(node, ins):
    m, _, n = _gemm_dims(node, ins[0].shape, ins[1].shape)
    return [((m, n), ins[0].dtype)]


def _gemm_macs(node, ins, outs):
    m, k, n = _gemm_dims(node, ins[0].shape, ins[1].shape)
    return m * k * n


def _gemm_ref(node, xs):
    a, b = xs[0].astype(np.float64), xs[1].astype(np.float64)
    c = xs[2] if len(xs) > 2 else None
    if attr(node, "transA", 0):
        a = a.T
    if attr(node, "transB", 0):
        b = b.T
    y = attr(node, "alpha", 1.0) * (a @ b)
    if c is not None:
        y = y + attr(node, "beta", 1.0) * c
    return [y.astype(xs[0].dtype)]


def _gemm_relax(ctx, node, args):
    a, b = args[0], args[1]
    if attr(node, "transA", 0):
        a = ctx.emit(R.permute_dims(a, [1, 0]))
    if attr(node, "transB", 0):
        b = ctx.emit(R.permute_dims(b, [1, 0]))
    y = ctx.emit(R.matmul(a, b))
    alpha = float(attr(node, "alpha", 1.0))
    if alpha != 1.0:
        y = ctx.emit(R.multiply(y, relax.const(alpha, "float32")))
    if len(args) > 2 and args[2] is not None:
        c = args[2]
        beta = float(attr(node, "beta", 1.0))
        if beta != 1.0:
            c = ctx.emit(R.multiply(c, relax.const(beta, "float32")))
        y = ctx.emit(R.add(y, c))
    return y


def _matmul_shape(node, ins):
    a, b = ins[0].shape, ins[1].shape
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return [(out, ins[0].dtype)]


def _matmul_macs(node, ins, outs):
    return outs[0].size * ins[0].shape[-1]


def _matmul_ref(node, xs):
    return [np.matmul(xs[0].astype(np.float64), xs[1].astype(np.float64)).astype(xs[0].dtype)]


def _matmul_relax(ctx, node, args):
    return R.matmul(args[0], args[1])


def _float_only(node, ins):
    for t in ins:
        if t is not None and t.dtype != "float32":
            return f"tensor '{t.name}' has dtype {t.dtype}; float32 expected"
    return None


register(
    OpDef("Conv", _conv_shape, _conv_ref, _conv_relax, _conv_macs, check=_conv_check),
    OpDef("ConvTranspose", _convt_shape, _convt_ref, _convt_relax, _convt_macs, check=_convt_check),
    OpDef("Gemm", _gemm_shape, _gemm_ref, _gemm_relax, _gemm_macs, check=_float_only),
    OpDef("MatMul", _matmul_shape, _matmul_ref, _matmul_relax, _matmul_macs, check=_float_only),
)
