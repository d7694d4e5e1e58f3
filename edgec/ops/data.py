"""Slice, Pad, Resize: data movement whose parameters are compile-time inputs.

Opset 10+ passes starts/ends/axes/steps (Slice), pads/constant_value/axes
(Pad) and roi/scales/sizes (Resize) as inputs; edgec needs them as constants
(`static_inputs`) and bakes them into the kernel.

Resize has two kernel paths. `R.image.resize2d` (TVM) derives its scale from
the sizes (input / output, multiplied by that reciprocal) and nudges floor /
ceil by 1e-5, which is ONNX only when the ONNX scale equals output / input and
the interpolation is continuous; it is used for bilinear resizes of NCHW
tensors where that holds. Every other supported case (all nearest modes, any
rank; linear with scales whose output size was floored; one-pixel
align_corners outputs) gets a small TE kernel that follows the ONNX formulas
exactly, in float32 and in the same operation order as the ONNX reference:
`x_original = (x_resized + 0.5) / scale - 0.5` etc., then rounding per
`nearest_mode` or (multi)linear interpolation with indices clamped to the edge.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
from tvm import te, tirx
from tvm.relax import op as R

from edgec.errors import ModelError
from edgec.ir import Node, Tensor
from edgec.ops.registry import OpDef, attr, register


def _input(xs: Sequence, i: int):
    """Value of optional input i (None when absent). Works on tensors (shape
    functions: their constant data) and on arrays (references)."""
    if i >= len(xs) or xs[i] is None:
        return None
    v = xs[i].data if isinstance(xs[i], Tensor) else xs[i]
    return None if v is None else np.asarray(v)


def _ints(v) -> list[int]:
    return [int(a) for a in np.asarray(v).reshape(-1)]


def _non_const(node: Node, ins: Sequence[Tensor | None], idx: Sequence[int], names: Sequence[str]) -> str | None:
    for i, name in zip(idx, names):
        if i < len(ins) and ins[i] is not None and ins[i].data is None:
            return f"'{name}' must be a compile-time constant (it is computed at run time from '{ins[i].name}')"
    return None


def _norm_axes(node: Node, axes: Sequence[int], rank: int, what: str = "axes") -> list[int]:
    out = []
    for a in axes:
        b = a + rank if a < 0 else a
        if not 0 <= b < rank:
            raise ModelError(f"node '{node.name}' ({node.op}): {what} value {a} is out of range for rank {rank}")
        if b in out:
            raise ModelError(f"node '{node.name}' ({node.op}): repeated axis {a}")
        out.append(b)
    return out


def _empty_output(shape: Sequence[int]) -> str | None:
    if any(d == 0 for d in shape):
        return f"the output {tuple(shape)} is empty (zero-size tensors are not supported)"
    return None


# ---- Slice -------------------------------------------------------------------------

def _slice_params(node: Node, shape: Sequence[int], xs: Sequence) -> list[tuple[int, int, int, int, int]]:
    """[(axis, start, end, step, length)] with start/end clamped per the ONNX spec.

    For a negative step, end may be -1 (meaning: up to and including index 0)."""
    starts, ends = _input(xs, 1), _input(xs, 2)
    if starts is None or ends is None:
        raise ModelError(f"node '{node.name}' (Slice): starts and ends are required")
    starts, ends = _ints(starts), _ints(ends)
    axes = _input(xs, 3)
    steps = _input(xs, 4)
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else _ints(axes)
    steps = [1] * len(starts) if steps is None else _ints(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ModelError(f"node '{node.name}' (Slice): starts, ends, axes and steps differ in length")
    axes = _norm_axes(node, axes, rank)
    out = []
    for a, s, e, st in zip(axes, starts, ends, steps):
        dim = int(shape[a])
        if st == 0:
            raise ModelError(f"node '{node.name}' (Slice): step 0 on axis {a}")
        if s < 0:
            s += dim
        if e < 0:
            e += dim
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        n = max(0, -(-(e - s) // st))
        out.append((a, s, e, st, n))
    return out


def _slice_shape(node, ins):
    x = ins[0]
    out = list(x.shape)
    for a, _, _, _, n in _slice_params(node, x.shape, ins):
        out[a] = n
    return [(tuple(out), x.dtype)]


def _slice_ref(node, xs):
    x = xs[0]
    sl = [slice(None)] * x.ndim
    for a, s, e, st, n in _slice_params(node, x.shape, xs):
        sl[a] = slice(s, e if e >= 0 else None, st)
    return [np.ascontiguousarray(x[tuple(sl)])]


def _slice_check(node, ins):
    why = _non_const(node, ins, (1, 2, 3, 4), ("starts", "ends", "axes", "steps"))
    if why:
        return why
    return _empty_output(_slice_shape(node, ins)[0][0])


def _slice_emit(ctx, node, args):
    shape = ctx.inputs[0].shape
    params = _slice_params(node, shape, ctx.inputs)
    if not params:
        return R.strided_slice(args[0], [0], [0], [int(shape[0])], [1])
    axes, begin, end, strides = [], [], [], []
    for a, s, e, st, _ in params:
        axes.append(a)
        begin.append(s)
        # TVM reads a negative end as counted from the back: "before index 0"
        # must be spelled -(dim + 1), which canonicalises to -1.
        end.append(e if e >= 0 else -(int(shape[a]) + 1))
        strides.append(st)
    return R.strided_slice(args[0], axes, begin, end, strides, assume_inbound=False)


# ---- Pad ---------------------------------------------------------------------------

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _pad_params(node: Node, shape: Sequence[int], xs: Sequence) -> tuple[str, list[tuple[int, int]], float]:
    mode = attr(node, "mode", "constant")
    rank = len(shape)
    pads = _input(xs, 1)
    if pads is None:
        pads = attr(node, "pads", None)  # opset < 11
    if pads is None:
        raise ModelError(f"node '{node.name}' (Pad): no pads")
    pads = _ints(pads)
    value = _input(xs, 2)
    value = float(value.reshape(-1)[0]) if value is not None and value.size else float(attr(node, "value", 0.0))
    axes = _input(xs, 3)
    axes = list(range(rank)) if axes is None else _norm_axes(node, _ints(axes), rank)
    if len(pads) != 2 * len(axes):
        raise ModelError(f"node '{node.name}' (Pad): {len(pads)} pads for {len(axes)} axes")
    width = [(0, 0)] * rank
    for i, a in enumerate(axes):
        width[a] = (pads[i], pads[len(axes) + i])
    return mode, width, value


def _pad_out(shape, width):
    return tuple(int(d) + b + e for d, (b, e) in zip(shape, width))


def _pad_shape(node, ins):
    x = ins[0]
    _, width, _ = _pad_params(node, x.shape, ins)
    out = _pad_out(x.shape, width)
    if any(d < 0 for d in out):
        raise ModelError(f"node '{node.name}' (Pad): negative pads crop {tuple(x.shape)} below zero")
    return [(out, x.dtype)]


def _pad_ref(node, xs):
    x = xs[0]
    mode, width, value = _pad_params(node, x.shape, xs)
    # negative pads remove elements (defined for mode=constant)
    crop = tuple(slice(max(0, -b), int(d) - max(0, -e)) for d, (b, e) in zip(x.shape, width))
    y = x[crop]
    pos = [(max(0, b), max(0, e)) for b, e in width]
    if mode == "constant":
        y = np.pad(y, pos, mode="constant", constant_values=np.asarray(value).astype(x.dtype))
    elif mode in ("reflect", "edge", "wrap"):
        y = np.pad(y, pos, mode=mode)
    else:
        raise NotImplementedError(f"Pad mode '{mode}'")
    return [np.ascontiguousarray(y.astype(x.dtype, copy=False))]


def _pad_check(node, ins):
    why = _non_const(node, ins, (1, 2, 3), ("pads", "constant_value", "axes"))
    if why:
        return why
    x = ins[0]
    mode, width, _ = _pad_params(node, x.shape, ins)
    if mode not in _PAD_MODES:
        return f"pad mode '{mode}' is not supported (constant, reflect, edge, wrap are)"
    if mode != "constant" and any(b < 0 or e < 0 for b, e in width):
        return f"negative pads with mode '{mode}'"
    for a, (d, (b, e)) in enumerate(zip(x.shape, width)):
        if mode == "reflect" and max(b, e) > d - 1:
            return f"reflect padding of {max(b, e)} on axis {a} of size {d} (at most size - 1 is supported)"
        if mode == "wrap" and max(b, e) > d:
            return f"wrap padding of {max(b, e)} on axis {a} of size {d} (at most the size is supported)"
        if mode == "edge" and d == 0 and (b or e):
            return "edge padding of an empty axis"
    return _empty_output(_pad_shape(node, ins)[0][0])


def _pad_emit(ctx, node, args):
    shape = ctx.inputs[0].shape
    mode, width, value = _pad_params(node, shape, ctx.inputs)
    x = args[0]
    if any(b < 0 or e < 0 for b, e in width):
        axes = list(range(len(shape)))
        x = ctx.emit(R.strided_slice(
            x, axes, [max(0, -b) for b, _ in width], [int(d) - max(0, -e) for d, (_, e) in zip(shape, width)],
            [1] * len(shape), assume_inbound=True,
        ))
    flat = [p for b, e in width for p in (max(0, b), max(0, e))]
    return R.nn.pad(x, flat, _PAD_MODES[mode], value)


# ---- Resize ------------------------------------------------------------------------

_CTMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


class _ResizePlan:
    """Output shape and per-axis scale of one Resize node (ONNX semantics)."""

    def __init__(self, node: Node, shape: Sequence[int], xs: Sequence):
        rank = len(shape)
        opset = int(attr(node, "_opset", 11))
        roi, scales, sizes = _input(xs, 1), _input(xs, 2), _input(xs, 3)
        if scales is not None and scales.size == 0:
            scales = None
        if sizes is not None and sizes.size == 0:
            sizes = None
        self.roi = None if roi is None or roi.size == 0 else roi
        axes = attr(node, "axes", None) if opset >= 18 else None
        axes = list(range(rank)) if axes is None else _norm_axes(node, [int(a) for a in axes], rank)
        policy = attr(node, "keep_aspect_ratio_policy", "stretch") if opset >= 18 else "stretch"
        self.mode = attr(node, "mode", "nearest")
        self.ctm = attr(node, "coordinate_transformation_mode", "half_pixel")
        self.nearest_mode = attr(node, "nearest_mode", "round_prefer_floor")
        self.antialias = int(attr(node, "antialias", 0)) if opset >= 18 else 0
        self.exclude_outside = int(attr(node, "exclude_outside", 0))
        self.in_shape = tuple(int(d) for d in shape)
        scale = [1.0] * rank
        out = list(self.in_shape)
        # With sizes, an axis' scale is the exact ratio size / input (of the
        # axis itself, or of the axis keep_aspect_ratio_policy picks): the
        # kernel computes with those integers rather than a rounded float32
        # scale (exact at rounding boundaries, and no float literal C would
        # print with too few digits).
        self.ratio: list[tuple[int, int] | None] = [None] * rank
        if sizes is not None:
            if scales is not None:
                raise ModelError(f"node '{node.name}' (Resize): both scales and sizes are given")
            sz = _ints(sizes)
            if len(sz) != len(axes):
                raise ModelError(f"node '{node.name}' (Resize): {len(sz)} sizes for {len(axes)} axes")
            for a, s in zip(axes, sz):
                scale[a] = s / self.in_shape[a]
                out[a] = s
                self.ratio[a] = (s, self.in_shape[a])
            if policy not in ("stretch", "not_larger", "not_smaller"):
                raise ModelError(f"node '{node.name}' (Resize): unknown keep_aspect_ratio_policy '{policy}'")
            if policy != "stretch":
                pick = min if policy == "not_larger" else max
                j = pick(axes, key=lambda b: scale[b])
                s, r = scale[j], self.ratio[j]
                for a in axes:
                    scale[a] = s
                    self.ratio[a] = r
                    out[a] = int(s * self.in_shape[a] + 0.5)
        elif scales is not None:
            sc = [float(v) for v in np.asarray(scales, np.float32).reshape(-1)]
            if len(sc) != len(axes):
                raise ModelError(f"node '{node.name}' (Resize): {len(sc)} scales for {len(axes)} axes")
            for a, s in zip(axes, sc):
                if not s > 0:
                    raise ModelError(f"node '{node.name}' (Resize): scale {s} must be positive")
                scale[a] = s
                out[a] = int(math.floor(s * self.in_shape[a]))
        else:
            raise ModelError(f"node '{node.name}' (Resize): neither scales nor sizes is given")
        self.scale = scale
        self.out_shape = tuple(out)

    def resized(self, a: int) -> bool:
        """False when axis a is left as it is (the ONNX reference skips it too)."""
        return not (math.isclose(self.scale[a], 1.0) and self.out_shape[a] == self.in_shape[a])

    @property
    def resized_axes(self) -> list[int]:
        return [a for a in range(len(self.in_shape)) if self.resized(a)]

    def problem(self) -> str | None:
        if self.mode not in ("nearest", "linear"):
            return f"mode '{self.mode}' is not supported (nearest and linear are)"
        if self.ctm not in _CTMS:
            return f"coordinate_transformation_mode '{self.ctm}' is not supported"
        if self.mode == "nearest" and self.nearest_mode not in _NEAREST_MODES:
            return f"nearest_mode '{self.nearest_mode}' is not supported"
        if self.antialias and self.mode == "linear" and any(self.scale[a] < 1 for a in self.resized_axes):
            return "antialiased linear downsampling is not supported"
        if self.antialias and self.mode == "nearest":
            return "antialias with mode nearest"
        return _empty_output(self.out_shape)

    # ---- coordinates (float64 in the reference, float32 in the kernel) --------
    def out_width(self, a: int) -> float:
        return self.scale[a] * self.in_shape[a]

    def coords(self, a: int) -> np.ndarray:
        y = np.arange(self.out_shape[a], dtype=np.float64)
        s, n_in, w = self.scale[a], self.in_shape[a], self.out_width(a)
        if self.ctm == "align_corners":
            return np.zeros_like(y) if w == 1 else y * (n_in - 1) / (w - 1)
        if self.ctm == "asymmetric":
            return y / s
        if self.ctm == "pytorch_half_pixel" and w == 1:
            return np.full_like(y, -0.5)
        x = (y + 0.5) / s - 0.5
        if self.ctm == "half_pixel_symmetric":
            x = n_in / 2 * (1 - self.out_shape[a] / w) + x
        return x

    def coord_expr(self, a: int, i):
        """The same formulas in float32; with sizes, dividing by the scale
        num / den is written as multiplying by den and dividing by num."""
        y = i.astype("float32")
        s, n_in, w = self.scale[a], self.in_shape[a], self.out_width(a)
        f32 = lambda v: tirx.const(float(v), "float32")  # noqa: E731
        num, den = self.ratio[a] or (None, None)

        def over_scale(v):
            return v / f32(s) if num is None else v * f32(den) / f32(num)

        if self.ctm == "align_corners":
            if w == 1:
                return f32(0.0)
            if num is None:
                return y * f32(n_in - 1) / f32(w - 1)
            return y * f32((n_in - 1) * den) / f32(num * n_in - den)  # w - 1 = (num * in - den) / den
        if self.ctm == "asymmetric":
            return over_scale(y)
        if self.ctm == "pytorch_half_pixel" and w == 1:
            return f32(-0.5)
        x = over_scale(y + f32(0.5)) - f32(0.5)
        if self.ctm == "half_pixel_symmetric":
            x = f32(n_in / 2 * (1 - self.out_shape[a] / w)) + x
        return x


def _nearest_index(xo: np.ndarray, mode: str) -> np.ndarray:
    if mode == "round_prefer_floor":
        return np.ceil(xo - 0.5)
    if mode == "round_prefer_ceil":
        return np.floor(xo + 0.5)
    if mode == "floor":
        return np.floor(xo)
    return np.ceil(xo)


def _resize_ref(node, xs):
    x = xs[0]
    p = _ResizePlan(node, x.shape, xs)
    why = p.problem()
    if why:
        raise NotImplementedError(why)
    y = x.astype(np.float64)
    for a in p.resized_axes:
        xo = p.coords(a)
        n = p.in_shape[a]
        if p.mode == "nearest":
            idx = np.clip(_nearest_index(xo, p.nearest_mode), 0, n - 1).astype(np.intp)
            y = np.take(y, idx, axis=a)
        else:
            f = np.floor(xo)
            r = (xo - f).reshape((1,) * a + (-1,) + (1,) * (y.ndim - a - 1))
            i0 = np.clip(f, 0, n - 1).astype(np.intp)
            i1 = np.clip(f + 1, 0, n - 1).astype(np.intp)
            y = np.take(y, i0, axis=a) * (1 - r) + np.take(y, i1, axis=a) * r
    return [y.astype(x.dtype)]


def _resize_shape(node, ins):
    p = _ResizePlan(node, ins[0].shape, ins)
    return [(p.out_shape, ins[0].dtype)]


def _resize_check(node, ins):
    why = _non_const(node, ins, (1, 2, 3), ("roi", "scales", "sizes"))
    if why:
        return why
    return _ResizePlan(node, ins[0].shape, ins).problem()


def _resize_macs(node, ins, outs):
    p = _ResizePlan(node, ins[0].shape, ins)
    if p.mode == "nearest":
        return 0
    return outs[0].size * 2 ** len(p.resized_axes)


def _use_resize2d(p: _ResizePlan) -> bool:
    """True when TVM's resize2d computes exactly the ONNX formula (see the module doc)."""
    if p.mode != "linear" or len(p.in_shape) != 4 or p.ctm == "half_pixel_symmetric":
        return False
    if any(p.resized(a) for a in (0, 1)):
        return False
    for a in (2, 3):
        if p.scale[a] * p.in_shape[a] != p.out_shape[a]:
            return False  # floored output size: TVM would use input / output as the scale
        if p.ctm == "align_corners" and p.out_shape[a] == 1:
            return False  # TVM divides by (output - 1)
    return True


def _resize_te(p: _ResizePlan):
    def compute(x):
        def body(*idx):
            taps_per_axis = []
            for a, i in enumerate(idx):
                if not p.resized(a):
                    taps_per_axis.append([(i, None)])
                    continue
                n = p.in_shape[a]
                xo = p.coord_expr(a, i)

                def clamp(k, n=n):
                    return te.max(te.min(k, n - 1), 0)

                if p.mode == "nearest":
                    if p.nearest_mode == "round_prefer_floor":
                        k = te.ceil(xo - tirx.const(0.5, "float32"))
                    elif p.nearest_mode == "round_prefer_ceil":
                        k = te.floor(xo + tirx.const(0.5, "float32"))
                    elif p.nearest_mode == "floor":
                        k = te.floor(xo)
                    else:
                        k = te.ceil(xo)
                    taps_per_axis.append([(clamp(k.astype("int32")), None)])
                else:
                    f = te.floor(xo)
                    r = xo - f
                    k0 = f.astype("int32")
                    one = tirx.const(1.0, "float32")
                    taps_per_axis.append([(clamp(k0), one - r), (clamp(k0 + 1), r)])
            acc = None
            for combo in itertools.product(*taps_per_axis):
                v = x(*[t[0] for t in combo])
                for t in combo:
                    if t[1] is not None:
                        v = v * t[1]
                acc = v if acc is None else acc + v
            return acc

        return te.compute(p.out_shape, body, name="resize")

    return compute


def _resize_emit(ctx, node, args):
    p = _ResizePlan(node, ctx.inputs[0].shape, ctx.inputs)
    if _use_resize2d(p):
        return R.image.resize2d(
            args[0],
            size=(p.out_shape[2], p.out_shape[3]),
            layout="NCHW",
            method="linear",
            coordinate_transformation_mode=p.ctm,
        )
    return ctx.bb.emit_te(_resize_te(p), args[0], primfunc_name_hint="resize")


def _copy_cost(node, ins, outs):
    return 0


register(
    OpDef("Slice", _slice_shape, _slice_ref, _slice_emit, _copy_cost, static_inputs=(1, 2, 3, 4), check=_slice_check),
    OpDef("Pad", _pad_shape, _pad_ref, _pad_emit, _copy_cost, static_inputs=(1, 2, 3), check=_pad_check),
    OpDef("Resize", _resize_shape, _resize_ref, _resize_emit, _resize_macs, static_inputs=(1, 2, 3), check=_resize_check),
)
