"""Integer (int8) ops with TFLite / TFLite Micro semantics, domain "edgec.q".

The TFLite frontend (edgec/frontend/tflite_frontend.py) turns every TFLite
operator into one of these nodes, with everything TFLite computes in its
`Prepare` step resolved at import into plain node attributes: explicit pads,
strides, dilations, zero points, the fixed-point requantization multipliers and
shifts, and the integer clamp of the fused activation. The NumPy references
below read only those attributes, never the tensors' QuantParams, so a kernel
(runtime_c) and the reference use the very same numbers.

The arithmetic itself lives in `edgec/qmath.py`, the one NumPy transliteration
of TFLite Micro's integer kernels and of its `Prepare` parameter maths (the C
kernels of runtime_c are tested against it, and the code generator fills their
argument structs with it). This file adapts it to graph nodes: attribute
resolution helpers for the frontend, shape and MAC functions, and references
that call qmath with the node's attributes. Bit-exact with TFLite Micro's
reference kernels (which CMSIS-NN matches): double-rounding
`MultiplyByQuantizedMultiplier` (TFLM is built without TFLITE_SINGLE_ROUNDING),
gemmlowp fixed-point exp / reciprocal / logistic / tanh, C's truncating
division in average pooling. docs/int8.md has the attribute reference.

Layout is TFLite's: activations NHWC, conv filters OHWI, depthwise filters
1HW(C*M), fully-connected weights (units, depth).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edgec import qmath
from edgec.ir import Tensor
from edgec.codegen.emitter import c_float_literal
from edgec.lower.ckernel import CCall, c_struct, dims, hw
from edgec.ops.registry import OpDef, attr, broadcast_shape, register

DOMAIN = "edgec.q"

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

_QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (INT32_MIN, INT32_MAX)}


# =============================================================================
# Import-time arithmetic: TFLite Micro's Prepare, from edgec/qmath.py (the one
# source of truth the C kernels' parameters come from too)
# =============================================================================

quantize_multiplier = qmath.quantize_multiplier
calculate_input_radius = qmath.calculate_input_radius
mbqm = qmath.multiply_by_quantized_multiplier  # double rounding, TFLM's build


def activation_range(activation: str, scale: float, zero_point: int, dtype: str = "int8") -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized: the integer clamp of a fused activation."""
    lo, hi = _QRANGE[dtype]
    return qmath.activation_range(activation, scale, zero_point, lo, hi)


def conv_requant(input_scale: float, filter_scales: Sequence[float], output_scale: float, channels: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-output-channel (multiplier, shift) of CONV_2D / DEPTHWISE_CONV_2D / per-channel
    FULLY_CONNECTED: double(in) * double(filter[c]) / double(out)."""
    m, s = qmath.conv_quant_params(input_scale, filter_scales, output_scale, channels)
    return tuple(int(v) for v in m), tuple(int(v) for v in s)


def fc_requant(input_scale: float, filter_scales: Sequence[float], output_scale: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """FULLY_CONNECTED: per-tensor takes the scale product in float32 before widening
    (GetQuantizedConvolutionMultipler), per-channel is computed as for conv."""
    m, s, _ = qmath.fc_quant_params(input_scale, filter_scales, output_scale)
    return tuple(int(v) for v in m), tuple(int(v) for v in s)


def add_attrs(s1: float, z1: int, s2: float, z2: int, so: float, zo: int, activation: str) -> dict:
    """ADD int8 (CalculateOpDataAdd): inputs rescaled to 2 * max scale, left shift 20."""
    p = qmath.add_params(s1, z1, s2, z2, so, zo, activation)
    return dict(in1_zp=-p.input1_offset, in2_zp=-p.input2_offset, output_zp=p.output_offset, left_shift=p.left_shift,
                in1_mult=p.input1_multiplier, in1_shift=p.input1_shift, in2_mult=p.input2_multiplier,
                in2_shift=p.input2_shift, out_mult=p.output_multiplier, out_shift=p.output_shift,
                act_min=p.act_min, act_max=p.act_max)


def mul_attrs(s1: float, z1: int, s2: float, z2: int, so: float, zo: int, activation: str) -> dict:
    p = qmath.mul_params(s1, z1, s2, z2, so, zo, activation)
    return dict(in1_zp=-p.input1_offset, in2_zp=-p.input2_offset, output_zp=p.output_offset,
                out_mult=p.output_multiplier, out_shift=p.output_shift, act_min=p.act_min, act_max=p.act_max)


def softmax_attrs(beta: float, input_scale: float) -> dict:
    """SOFTMAX int8 -> int8 (PreprocessSoftmaxScaling, CalculateInputRadius)."""
    p = qmath.softmax_params(input_scale, beta)
    return dict(input_multiplier=p.input_multiplier, input_left_shift=p.input_left_shift, diff_min=p.diff_min)


def sigmoid_tanh_attrs(input_scale: float, input_zero_point: int) -> dict:
    """LOGISTIC / TANH int8 (TFLM Prepare): Q4.27 input rescale from a bare frexp."""
    p = qmath.logistic_params(input_scale, input_zero_point)
    return dict(input_zp=p.input_zero_point, input_multiplier=p.input_multiplier,
                input_left_shift=p.input_left_shift, input_range_radius=p.input_range_radius)


# =============================================================================
# Op bundles
# =============================================================================

def _pads(node) -> tuple[int, int, int, int]:
    return tuple(int(p) for p in attr(node, "pads", (0, 0, 0, 0)))  # top, left, bottom, right


def _out_hw(h, w, kh, kw, node) -> tuple[int, int]:
    sh, sw = attr(node, "strides", (1, 1))
    dh, dw = attr(node, "dilations", (1, 1))
    pt, pl, pb, pr = _pads(node)
    oh = (h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    ow = (w + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    if oh <= 0 or ow <= 0:
        raise ValueError(f"window {kh}x{kw} larger than padded input {h}x{w}")
    return oh, ow


def _mult_shift(node) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(attr(node, "out_mult"), np.int64), np.asarray(attr(node, "out_shift"), np.int64)


def _window_kw(node, oh: int, ow: int) -> dict:
    """TFLite kernels take the top/left pad; the bottom/right follows from the output size."""
    pt, pl, _, _ = _pads(node)
    return dict(stride=tuple(attr(node, "strides", (1, 1))), padding=(pt, pl), out_hw=(oh, ow))


def _check_rank4(node, ins) -> str | None:
    if len(ins[0].shape) != 4:
        return f"input rank {len(ins[0].shape)} (NHWC rank 4 expected)"
    return None


# ---- CONV_2D -------------------------------------------------------------------

def _conv_shape(node, ins):
    x, w = ins[0], ins[1]
    n, h, wd, c = x.shape
    o, kh, kw, ci = w.shape
    if ci == 0 or c % ci or o % (c // ci):
        raise ValueError(f"filter depth {ci} does not divide input depth {c} into groups")
    oh, ow = _out_hw(h, wd, kh, kw, node)
    return [((n, oh, ow, o), attr(node, "out_dtype", "int8"))]


def _conv_macs(node, ins, outs):
    w = ins[1]
    return outs[0].size * int(np.prod(w.shape[1:]))


def _conv_ref(node, xs):
    x, w = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    oh, ow = _out_hw(x.shape[1], x.shape[2], w.shape[1], w.shape[2], node)
    m, s = _mult_shift(node)
    return [qmath.conv2d_s8(x, w, b, input_offset=-int(attr(node, "input_zp")), output_offset=int(attr(node, "output_zp")),
                            multiplier=m, shift=s, dilation=tuple(attr(node, "dilations", (1, 1))),
                            act_min=int(attr(node, "act_min")), act_max=int(attr(node, "act_max")), **_window_kw(node, oh, ow))]


def _conv_check(node, ins):
    return _check_rank4(node, ins) or (None if len(ins[1].shape) == 4 else "filter must be OHWI (rank 4)")


# ---- DEPTHWISE_CONV_2D -----------------------------------------------------------

def _dw_shape(node, ins):
    x, w = ins[0], ins[1]
    n, h, wd, c = x.shape
    _, kh, kw, oc = w.shape
    dm = int(attr(node, "depth_multiplier", 1))
    if oc != c * dm:
        raise ValueError(f"filter channels {oc} != input channels {c} x depth_multiplier {dm}")
    oh, ow = _out_hw(h, wd, kh, kw, node)
    return [((n, oh, ow, oc), attr(node, "out_dtype", "int8"))]


def _dw_macs(node, ins, outs):
    w = ins[1]
    return outs[0].size * w.shape[1] * w.shape[2]


def _dw_ref(node, xs):
    x, w = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    oh, ow = _out_hw(x.shape[1], x.shape[2], w.shape[1], w.shape[2], node)
    m, s = _mult_shift(node)
    return [qmath.depthwise_conv2d_s8(
        x, w, b, input_offset=-int(attr(node, "input_zp")), output_offset=int(attr(node, "output_zp")), multiplier=m,
        shift=s, depth_multiplier=int(attr(node, "depth_multiplier", 1)), dilation=tuple(attr(node, "dilations", (1, 1))),
        act_min=int(attr(node, "act_min")), act_max=int(attr(node, "act_max")), **_window_kw(node, oh, ow))]


def _dw_check(node, ins):
    r = _check_rank4(node, ins)
    if r:
        return r
    if len(ins[1].shape) != 4 or ins[1].shape[0] != 1:
        return f"depthwise filter shape {ins[1].shape} (1xHxWxC expected)"
    return None


# ---- FULLY_CONNECTED ---------------------------------------------------------------

def _fc_shape(node, ins):
    x, w = ins[0], ins[1]
    units, depth = w.shape
    if x.size % depth:
        raise ValueError(f"input size {x.size} is not a multiple of the weights' depth {depth}")
    if attr(node, "keep_num_dims", False):
        if x.shape[-1] != depth:
            raise ValueError(f"keep_num_dims: last input dim {x.shape[-1]} != depth {depth}")
        return [(tuple(x.shape[:-1]) + (units,), attr(node, "out_dtype", "int8"))]
    return [((x.size // depth, units), attr(node, "out_dtype", "int8"))]


def _fc_macs(node, ins, outs):
    return outs[0].size * ins[1].shape[1]


def _fc_ref(node, xs):
    x, w = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    m, s = _mult_shift(node)
    y = qmath.fully_connected_s8(x.reshape(-1, w.shape[1]), w, b, input_offset=-int(attr(node, "input_zp")),
                                 output_offset=int(attr(node, "output_zp")), multiplier=m, shift=s,
                                 filter_offset=-int(attr(node, "filter_zp", 0)),
                                 act_min=int(attr(node, "act_min")), act_max=int(attr(node, "act_max")))
    shape = _fc_shape(node, [Tensor("x", x.shape, x.dtype.name), Tensor("w", w.shape, w.dtype.name)])[0][0]
    return [y.reshape(shape)]


def _fc_check(node, ins):
    if len(ins[1].shape) != 2:
        return f"weights rank {len(ins[1].shape)} (2 expected)"
    return None


# ---- AVERAGE_POOL_2D / MAX_POOL_2D -----------------------------------------------------

def _pool_shape(node, ins):
    n, h, w, c = ins[0].shape
    kh, kw = attr(node, "kernel")
    oh, ow = _out_hw(h, w, kh, kw, node)
    return [((n, oh, ow, c), ins[0].dtype)]


def _pool_macs(node, ins, outs):
    kh, kw = attr(node, "kernel")
    return outs[0].size * kh * kw


def _pool_ref(fn):
    def ref(node, xs):
        x = xs[0]
        kh, kw = attr(node, "kernel")
        oh, ow = _out_hw(x.shape[1], x.shape[2], kh, kw, node)
        return [fn(x, filter_hw=(kh, kw), act_min=int(attr(node, "act_min")), act_max=int(attr(node, "act_max")),
                   **_window_kw(node, oh, ow))]

    return ref


# ---- SOFTMAX ---------------------------------------------------------------------

def _same_shape(node, ins):
    return [(ins[0].shape, attr(node, "out_dtype", ins[0].dtype))]


def _softmax_ref(node, xs):
    p = qmath.SoftmaxParams(int(attr(node, "input_multiplier")), int(attr(node, "input_left_shift")), int(attr(node, "diff_min")))
    return [qmath.softmax_s8(xs[0], p)]


def _softmax_lut_ref(node, xs):
    return [qmath.softmax_lut_s8(xs[0], attr(node, "exp_table"), int(attr(node, "recip")), int(attr(node, "output_zp")))]


def _softmax_lut_check(node, ins):
    if ins[0].dtype != "int8":
        return "only int8 -> int8 softmax is supported"
    if not ins[0].shape or ins[0].shape[-1] > 2047:
        return "rows of more than 2047 elements"
    return None


def _softmax_check(node, ins):
    if ins[0].dtype != "int8" or attr(node, "out_dtype", "int8") != "int8":
        return "only int8 -> int8 softmax is supported"
    return None


# ---- RESHAPE -----------------------------------------------------------------------

def _reshape_shape(node, ins):
    shape = tuple(int(d) for d in attr(node, "shape"))
    if int(np.prod(shape, dtype=np.int64)) != ins[0].size:
        raise ValueError(f"cannot reshape {ins[0].shape} to {shape}")
    return [(shape, ins[0].dtype)]


def _reshape_ref(node, xs):
    return [xs[0].reshape(tuple(attr(node, "shape")))]


# ---- ADD / MUL ---------------------------------------------------------------------

def _binary_shape(node, ins):
    return [(broadcast_shape(ins[0].shape, ins[1].shape), attr(node, "out_dtype", ins[0].dtype))]


def _add_ref(node, xs):
    a = attr
    p = qmath.AddParams(-int(a(node, "in1_zp")), int(a(node, "in1_mult")), int(a(node, "in1_shift")),
                        -int(a(node, "in2_zp")), int(a(node, "in2_mult")), int(a(node, "in2_shift")),
                        int(a(node, "left_shift")), int(a(node, "output_zp")), int(a(node, "out_mult")),
                        int(a(node, "out_shift")), int(a(node, "act_min")), int(a(node, "act_max")))
    return [qmath.add_s8(xs[0], xs[1], p)]


def _mul_ref(node, xs):
    a = attr
    p = qmath.MulParams(-int(a(node, "in1_zp")), -int(a(node, "in2_zp")), int(a(node, "output_zp")),
                        int(a(node, "out_mult")), int(a(node, "out_shift")), int(a(node, "act_min")), int(a(node, "act_max")))
    return [qmath.mul_s8(xs[0], xs[1], p)]


def _binary_check(node, ins):
    if len(broadcast_shape(ins[0].shape, ins[1].shape)) > 6:
        return "broadcast rank above 6"
    return None


# ---- CONCATENATION / PAD / STRIDED_SLICE ------------------------------------------------

def _concat_shape(node, ins):
    axis = int(attr(node, "axis"))
    shapes = [t.shape for t in ins]
    base = list(shapes[0])
    for s in shapes[1:]:
        if len(s) != len(base) or any(a != b for k, (a, b) in enumerate(zip(s, base)) if k != axis):
            raise ValueError(f"cannot concatenate {shapes} along axis {axis}")
    base[axis] = sum(s[axis] for s in shapes)
    return [(tuple(base), ins[0].dtype)]


def _concat_ref(node, xs):
    return [np.concatenate(xs, axis=int(attr(node, "axis")))]


def _copy_macs(node, ins, outs):
    return 0


def _pad_shape(node, ins):
    pads = attr(node, "pads")
    return [(tuple(d + b + e for d, (b, e) in zip(ins[0].shape, pads)), ins[0].dtype)]


def _pad_ref(node, xs):
    return [np.pad(xs[0], [tuple(p) for p in attr(node, "pads")], constant_values=int(attr(node, "pad_value")))]


def _slice_shape(node, ins):
    shape = []
    for d, (b, e, s) in zip(ins[0].shape, attr(node, "slices")):
        shape.append(len(range(b, e, s)))
    return [(tuple(shape), ins[0].dtype)]


def _slice_ref(node, xs):
    idx = tuple(slice(b, e if e >= 0 else None, s) for b, e, s in attr(node, "slices"))
    y = xs[0][idx]
    return [y.reshape(tuple(attr(node, "shape", y.shape)))]


def _slice_out_shape(node, ins):
    (full, dt), = _slice_shape(node, ins)
    shape = tuple(attr(node, "shape", full))
    if int(np.prod(shape, dtype=np.int64)) != int(np.prod(full, dtype=np.int64)):
        raise ValueError(f"slice {full} does not match output shape {shape}")
    return [(shape, dt)]


# ---- QUANTIZE / DEQUANTIZE ------------------------------------------------------------

def _quantize_ref(node, xs):
    x = xs[0]
    dt = attr(node, "out_dtype", "int8")
    lo, hi = _QRANGE[dt]
    if attr(node, "mode") == "float":
        q = x.astype(np.float32) / np.float32(attr(node, "scale"))
        q = np.where(np.abs(q - np.trunc(q)) >= 0.5, np.trunc(q) + np.sign(q), np.trunc(q))  # roundf, exact
        q = np.clip(np.nan_to_num(q), INT32_MIN, INT32_MAX)
        y = q.astype(np.int64) + int(attr(node, "output_zp"))
    else:
        y = mbqm(x.astype(np.int64) - int(attr(node, "input_zp")), attr(node, "mult"), attr(node, "shift")) + int(attr(node, "output_zp"))
    return [np.clip(y, lo, hi).astype(dt)]


def _dequantize_ref(node, xs):
    v = xs[0].astype(np.int64) - int(attr(node, "input_zp"))
    return [(float(np.float32(attr(node, "scale"))) * v.astype(np.float64)).astype(np.float32)]


# ---- LOGISTIC / TANH -------------------------------------------------------------------

def _sigmoid_like_ref(tanh: bool):
    def ref(node, xs):
        p = qmath.SigmoidParams(int(attr(node, "input_zp")), int(attr(node, "input_range_radius")),
                                int(attr(node, "input_multiplier")), int(attr(node, "input_left_shift")))
        return [(qmath.tanh_s8 if tanh else qmath.logistic_s8)(xs[0], p)]

    return ref


def _lut_ref(node, xs):
    table = np.asarray(attr(node, "table"), np.int8)
    return [table[xs[0].astype(np.int32) + 128]]


def _int8_only(node, ins):
    if ins[0].dtype != "int8":
        return f"input dtype {ins[0].dtype} (int8 only)"
    return None


# =============================================================================
# Kernels: calls into runtime_c/kernels (docs/kernels.md maps every argument)
# =============================================================================

def _quant(ctx, node) -> str:
    m, sh = _mult_shift(node)
    mult = ctx.int_array("mult", m)
    shift = ctx.int_array("shift", sh)
    return "&" + ctx.static("edgec_quant_params", "quant", c_struct(multiplier=mult, shift=shift, per_channel=int(m.size > 1)))


def _bias_arg(ctx, node) -> str:
    return ctx.input(2) if len(node.inputs) > 2 and node.inputs[2] else "0"


def _conv_c(ctx, node):
    x, w = ctx.inputs[0], ctx.inputs[1]
    y = ctx.outputs[0]
    pt, pl, _, _ = _pads(node)
    params = "&" + ctx.static("edgec_conv_params", "params", c_struct(
        input_offset=-int(attr(node, "input_zp")), output_offset=int(attr(node, "output_zp")),
        stride=hw(attr(node, "strides", (1, 1))), padding=hw((pt, pl)), dilation=hw(attr(node, "dilations", (1, 1))),
        act_min=int(attr(node, "act_min")), act_max=int(attr(node, "act_max"))))
    _, kh, kw, ci = w.shape
    pointwise = (kh, kw) == (1, 1) and tuple(attr(node, "strides", (1, 1))) == (1, 1) and _pads(node) == (0, 0, 0, 0) \
        and ci == x.shape[3]
    if pointwise:
        pruned = _pruned_pointwise(ctx, node, params)
        if pruned is not None:
            return pruned
        fn, scratch, why = "edgec_convolve_1x1_s8", qmath.convolve_1x1_s8_buffer_size(ci, dsp=ctx.dsp), "1x1, stride 1, no padding: GEMM without im2col"
        srcs = ("edgec_convolve_1x1_s8.c", "edgec_nn_mat_mult_s8.c")
    else:
        fn, scratch, why = "edgec_convolve_s8", qmath.convolve_s8_buffer_size(kh, kw, ci, dsp=ctx.dsp), "general conv (im2col + GEMM)"
        srcs = ("edgec_convolve_s8.c", "edgec_nn_mat_mult_s8.c")
    args = [ctx.scratch() if scratch else "0", params, _quant(ctx, node),
            "&" + ctx.static("edgec_dims", "in_dims", dims(x.shape)), ctx.input(0),
            "&" + ctx.static("edgec_dims", "w_dims", dims(w.shape)), ctx.input(1), _bias_arg(ctx, node),
            "&" + ctx.static("edgec_dims", "out_dims", dims(y.shape)), ctx.output()]
    return CCall(fn, args, srcs, scratch, why + (" (DSP: __SMLAD)" if ctx.dsp else " (portable C)"))


def pruned_pointwise_eligible(in_channels: int, act_min: int, act_max: int, dsp: bool) -> bool:
    """Whether a stride-1 pointwise layer with all-zero filters takes
    edgec_convolve_1x1_pruned_s8: always on portable builds; on DSP builds only
    where the live channels run on the weight-stationary path (input channels a
    multiple of 4, the full int8 activation range), not on its direct loop."""
    return not dsp or (in_channels % 4 == 0 and act_min <= -128 and act_max >= 127)


def _pruned_pointwise(ctx, node, params: str) -> CCall | None:
    """A stride-1 pointwise layer with all-zero filters (pruned in training) as
    edgec_convolve_1x1_pruned_s8: the constant channels' outputs are computed
    here, their filters, biases and multipliers never reach flash. None when no
    filter is all zero, or when not pruned_pointwise_eligible."""
    x, w, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    if w.data is None:
        return None
    ci, cout = w.shape[3], w.shape[0]
    lo, hi = int(attr(node, "act_min")), int(attr(node, "act_max"))
    if not pruned_pointwise_eligible(ci, lo, hi, ctx.dsp):
        return None
    bias = ctx.inputs[2].data if len(node.inputs) > 2 and node.inputs[2] else None
    m, sh = _mult_shift(node)
    m, sh = np.broadcast_to(m, (cout,)), np.broadcast_to(sh, (cout,))
    pc = qmath.pruned_channels(w.data, bias, m, sh, int(attr(node, "output_zp")), lo, hi)
    if pc.dead.size == 0:
        return None
    live = pc.live
    quant = "&" + ctx.static("edgec_quant_params", "quant", c_struct(
        multiplier=ctx.int_array("mult", m[live]), shift=ctx.int_array("shift", sh[live]), per_channel=1))
    cmap = "&" + ctx.static("edgec_channel_map", "channels", c_struct(
        live=live.size, live_ch=ctx.int_array("live_ch", live, "int16_t"), dead=pc.dead.size,
        dead_ch=ctx.int_array("dead_ch", pc.dead, "int16_t"), dead_value=ctx.int_array("dead_value", pc.dead_value, "int8_t")))
    filt = ctx.int_array("filter", w.data[live], "int8_t", align=4)
    bias_arg = ctx.int_array("bias", bias[live]) if bias is not None else "0"
    scratch = qmath.convolve_1x1_s8_buffer_size(ci, dsp=ctx.dsp)
    args = [ctx.scratch() if scratch else "0", params, quant, cmap,
            "&" + ctx.static("edgec_dims", "in_dims", dims(x.shape)), ctx.input(0),
            "&" + ctx.static("edgec_dims", "w_dims", dims((live.size, 1, 1, ci))), filt, bias_arg,
            "&" + ctx.static("edgec_dims", "out_dims", dims(y.shape)), ctx.output()]
    why = (f"1x1, stride 1, pruned: {pc.dead.size} of {cout} channels constant, their filters left out"
           + (" (DSP: __SMLAD)" if ctx.dsp else " (portable C)"))
    return CCall("edgec_convolve_1x1_pruned_s8", args, ("edgec_convolve_1x1_s8.c", "edgec_nn_mat_mult_s8.c"),
                 scratch, why)


def _dw_c(ctx, node):
    x, w, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    pt, pl, _, _ = _pads(node)
    params = "&" + ctx.static("edgec_dw_conv_params", "params", c_struct(
        input_offset=-int(attr(node, "input_zp")), output_offset=int(attr(node, "output_zp")),
        stride=hw(attr(node, "strides", (1, 1))), padding=hw((pt, pl)), dilation=hw(attr(node, "dilations", (1, 1))),
        depth_multiplier=int(attr(node, "depth_multiplier", 1)),
        act_min=int(attr(node, "act_min")), act_max=int(attr(node, "act_max"))))
    args = [params, _quant(ctx, node), "&" + ctx.static("edgec_dims", "in_dims", dims(x.shape)), ctx.input(0),
            "&" + ctx.static("edgec_dims", "w_dims", dims(w.shape)), ctx.input(1), _bias_arg(ctx, node),
            "&" + ctx.static("edgec_dims", "out_dims", dims(y.shape)), ctx.output()]
    why = "depthwise" + (" 3x3 fast path" if w.shape[1:3] == (3, 3) else "")
    return CCall("edgec_depthwise_conv_s8", args, ("edgec_depthwise_conv_s8.c",), 0, why)


def _fc_c(ctx, node):
    x, w = ctx.inputs[0], ctx.inputs[1]
    units, depth = w.shape
    params = "&" + ctx.static("edgec_fc_params", "params", c_struct(
        input_offset=-int(attr(node, "input_zp")), filter_offset=-int(attr(node, "filter_zp", 0)),
        output_offset=int(attr(node, "output_zp")), act_min=int(attr(node, "act_min")), act_max=int(attr(node, "act_max"))))
    args = [params, _quant(ctx, node), str(x.size // depth), str(depth), str(units), ctx.input(0), ctx.input(1),
            _bias_arg(ctx, node), ctx.output()]
    return CCall("edgec_fully_connected_s8", args, ("edgec_fully_connected_s8.c",), 0, "fully connected")


def _pool_c(kind):
    def emit(ctx, node):
        x, y = ctx.inputs[0], ctx.outputs[0]
        pt, pl, _, _ = _pads(node)
        params = "&" + ctx.static("edgec_pool_params", "params", c_struct(
            stride=hw(attr(node, "strides", (1, 1))), padding=hw((pt, pl)), filter=hw(attr(node, "kernel")),
            act_min=int(attr(node, "act_min")), act_max=int(attr(node, "act_max"))))
        args = [params, "&" + ctx.static("edgec_dims", "in_dims", dims(x.shape)), ctx.input(0),
                "&" + ctx.static("edgec_dims", "out_dims", dims(y.shape)), ctx.output()]
        return CCall(f"edgec_{kind}pool_s8", args, (f"edgec_{kind}pool_s8.c",), 0, f"{kind} pool")

    return emit


def _softmax_c(ctx, node):
    x = ctx.inputs[0]
    row = x.shape[-1]
    args = [ctx.input(0), str(x.size // row), str(row), str(int(attr(node, "input_multiplier"))),
            str(int(attr(node, "input_left_shift"))), str(int(attr(node, "diff_min"))), ctx.output()]
    return CCall("edgec_softmax_s8", args, ("edgec_softmax_s8.c",), 0, "gemmlowp fixed-point softmax")


def _softmax_lut_c(ctx, node):
    x = ctx.inputs[0]
    row = x.shape[-1]
    args = [ctx.input(0), str(x.size // row), str(row), ctx.int_array("exp_table", attr(node, "exp_table")),
            str(int(attr(node, "recip"))), str(int(attr(node, "output_zp"))), ctx.output()]
    return CCall("edgec_softmax_lut_s8", args, ("edgec_softmax_s8.c",), 0, "exp table, one rounding (any output scale)")


def _binary_sizes(ctx, node) -> tuple[int, int] | None:
    a, b, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    if (a.size in (1, y.size)) and (b.size in (1, y.size)):
        return a.size, b.size
    return None


def _add_c(ctx, node):
    a = attr
    params = "&" + ctx.static("edgec_add_params", "params", c_struct(
        input1_offset=-int(a(node, "in1_zp")), input1_multiplier=int(a(node, "in1_mult")), input1_shift=int(a(node, "in1_shift")),
        input2_offset=-int(a(node, "in2_zp")), input2_multiplier=int(a(node, "in2_mult")), input2_shift=int(a(node, "in2_shift")),
        left_shift=int(a(node, "left_shift")), output_offset=int(a(node, "output_zp")),
        output_multiplier=int(a(node, "out_mult")), output_shift=int(a(node, "out_shift")),
        act_min=int(a(node, "act_min")), act_max=int(a(node, "act_max"))))
    sizes = _binary_sizes(ctx, node)
    if sizes is None:  # general broadcasting: the TVM kernel handles it
        return None
    n1, n2 = sizes
    return CCall("edgec_add_s8", [params, ctx.input(0), str(n1), ctx.input(1), str(n2), ctx.output()], ("edgec_add_s8.c",), 0, "add")


def _mul_c(ctx, node):
    a = attr
    params = "&" + ctx.static("edgec_mul_params", "params", c_struct(
        input1_offset=-int(a(node, "in1_zp")), input2_offset=-int(a(node, "in2_zp")), output_offset=int(a(node, "output_zp")),
        output_multiplier=int(a(node, "out_mult")), output_shift=int(a(node, "out_shift")),
        act_min=int(a(node, "act_min")), act_max=int(a(node, "act_max"))))
    sizes = _binary_sizes(ctx, node)
    if sizes is None:
        return None
    n1, n2 = sizes
    return CCall("edgec_mul_s8", [params, ctx.input(0), str(n1), ctx.input(1), str(n2), ctx.output()], ("edgec_mul_s8.c",), 0, "mul")


def _concat_c(ctx, node):
    axis = int(attr(node, "axis")) % len(ctx.outputs[0].shape)
    shape = ctx.outputs[0].shape
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    ptrs = ", ".join(ctx.input(i) for i in range(len(ctx.inputs)))
    sizes = ctx.int_array("axis_sizes", [t.shape[axis] for t in ctx.inputs])
    args = [f"(const int8_t *const[]){{{ptrs}}}", sizes, str(len(ctx.inputs)), str(outer), str(inner), ctx.output()]
    return CCall("edgec_concat_s8", args, ("edgec_concat_s8.c",), 0, "copy")


def _pad_c(ctx, node):
    x = ctx.inputs[0]
    pads = attr(node, "pads")
    args = [ctx.input(0), str(len(x.shape)), ctx.int_array("dims", x.shape), ctx.int_array("before", [b for b, _ in pads]),
            ctx.int_array("after", [e for _, e in pads]), str(int(attr(node, "pad_value"))), ctx.output()]
    return CCall("edgec_pad_s8", args, ("edgec_pad_s8.c",), 0, "copy with constant border")


def _sigmoid_like_c(kind):
    def emit(ctx, node):
        args = [ctx.input(0), str(ctx.inputs[0].size), str(int(attr(node, "input_zp"))), str(int(attr(node, "input_range_radius"))),
                str(int(attr(node, "input_multiplier"))), str(int(attr(node, "input_left_shift"))), ctx.output()]
        return CCall(f"edgec_{kind}_s8", args, (f"edgec_{kind}_s8.c",), 0, "gemmlowp fixed point")

    return emit


def _quantize_c(ctx, node):
    if attr(node, "out_dtype", "int8") != "int8":
        return None
    n = str(ctx.inputs[0].size)
    if attr(node, "mode") == "float":
        args = [ctx.input(0), n, c_float_literal(float(np.float32(attr(node, "scale")))), str(int(attr(node, "output_zp"))), ctx.output()]
        return CCall("edgec_quantize_f32_s8", args, ("edgec_quantize_s8.c",), 0, "float32 -> int8 (roundf)")
    args = [ctx.input(0), n, str(-int(attr(node, "input_zp"))), str(int(attr(node, "mult"))), str(int(attr(node, "shift"))),
            str(int(attr(node, "output_zp"))), ctx.output()]
    return CCall("edgec_requantize_s8", args, ("edgec_quantize_s8.c",), 0, "int8 -> int8 requantization")


def _dequantize_c(ctx, node):
    if ctx.inputs[0].dtype != "int8":
        return None
    args = [ctx.input(0), str(ctx.inputs[0].size), c_float_literal(float(np.float32(attr(node, "scale")))),
            str(int(attr(node, "input_zp"))), ctx.output()]
    return CCall("edgec_dequantize_s8_f32", args, ("edgec_quantize_s8.c",), 0, "int8 -> float32")


def _lut_c(ctx, node):
    table = ctx.int_array("table", attr(node, "table"), "int8_t")
    args = [ctx.input(0), str(ctx.inputs[0].size), table, ctx.output()]
    return CCall("edgec_lut_s8", args, ("edgec_lut_s8.c",), 0, "256-entry table")


# =============================================================================
# Kernels generated through TVM (Relax emit_te -> TIR -> C): the second
# implementation of the integer ops, with TFLite's fixed-point requantization
# written out in TIR (bit-exact with the runtime_c kernels and TFLite Micro).
# =============================================================================

def _mbqm_te(x, mult, shift):
    """MultiplyByQuantizedMultiplier (TFLite, double rounding) on int32 TIR values."""
    from tvm import tirx

    i32, i64 = "int32", "int64"
    left = tirx.max(shift, tirx.const(0, i32))
    right = tirx.max(-shift, tirx.const(0, i32))
    ab = tirx.Cast(i64, tirx.shift_left(x, left)) * tirx.Cast(i64, mult)
    nudge = tirx.Select(ab >= tirx.const(0, i64), tirx.const(1 << 30, i64), tirx.const(1 - (1 << 30), i64))
    high = tirx.Cast(i32, tirx.truncdiv(ab + nudge, tirx.const(1 << 31, i64)))
    mask = tirx.shift_left(tirx.const(1, i32), right) - tirx.const(1, i32)
    rem = tirx.bitwise_and(high, mask)
    thr = tirx.shift_right(mask, tirx.const(1, i32)) + tirx.Select(high < tirx.const(0, i32), tirx.const(1, i32), tirx.const(0, i32))
    return tirx.shift_right(high, right) + tirx.Select(rem > thr, tirx.const(1, i32), tirx.const(0, i32))


def _clamp_s8(v, lo: int, hi: int, dtype: str = "int8"):
    from tvm import tirx

    return tirx.Cast(dtype, tirx.min(tirx.max(v, tirx.const(lo, "int32")), tirx.const(hi, "int32")))


def _requant_consts(node, ins) -> list[np.ndarray]:
    m, sh = _mult_shift(node)
    return [m.astype(np.int32), sh.astype(np.int32)]


def _conv_like_te(node, depthwise: bool):
    from tvm import te, tirx

    sh_, sw_ = attr(node, "strides", (1, 1))
    dh_, dw_ = attr(node, "dilations", (1, 1))
    pt, pl, _, _ = _pads(node)
    in_off, out_off = -int(attr(node, "input_zp")), int(attr(node, "output_zp"))
    lo, hi = int(attr(node, "act_min")), int(attr(node, "act_max"))
    dm = int(attr(node, "depth_multiplier", 1))

    def fn(x, w, *rest):
        b, mult, shift = (rest if len(rest) == 3 else (None,) + tuple(rest))
        n_, h_, w_in, c_ = (int(d) for d in x.shape)
        if depthwise:
            _, kh, kw, o_ = (int(d) for d in w.shape)
            ci = 1
        else:
            o_, kh, kw, ci = (int(d) for d in w.shape)
        og = o_ // (c_ // ci) if not depthwise else 1
        oh = (h_ + pt + int(attr(node, "pads")[2]) - ((kh - 1) * dh_ + 1)) // sh_ + 1
        ow = (w_in + pl + int(attr(node, "pads")[3]) - ((kw - 1) * dw_ + 1)) // sw_ + 1
        rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")
        axes = [rh, rw]
        if not depthwise:
            rc = te.reduce_axis((0, ci), "rc")
            axes.append(rc)

        def acc(n, y, xx, o):
            ih, iw = y * sh_ - pt + rh * dh_, xx * sw_ - pl + rw * dw_
            inb = tirx.all(ih >= 0, ih < h_, iw >= 0, iw < w_in)
            if depthwise:
                xv, wv = x[n, ih, iw, o // dm], w[0, rh, rw, o]
            else:
                xv, wv = x[n, ih, iw, (o // og) * ci + rc], w[o, rh, rw, rc]
            term = tirx.if_then_else(inb, (xv.astype("int32") + in_off) * wv.astype("int32"), tirx.const(0, "int32"))
            return te.sum(term, axis=axes)

        a = te.compute((n_, oh, ow, o_), acc, name="acc")

        def out(n, y, xx, o):
            v = a[n, y, xx, o] + (b[o] if b is not None else tirx.const(0, "int32"))
            k = o if int(mult.shape[0]) > 1 else 0
            return _clamp_s8(_mbqm_te(v, mult[k], shift[k]) + out_off, lo, hi)

        return te.compute((n_, oh, ow, o_), out, name="requant")

    return fn


def _conv_relax(depthwise: bool):
    def emit(ctx, node, args):
        ins = [a for a in args if a is not None]
        return ctx.bb.emit_te(_conv_like_te(node, depthwise), *ins, *ctx.consts)

    return emit


def _fc_relax(ctx, node, args):
    from tvm import te, tirx
    from tvm.relax import op as R

    w = ctx.inputs[1]
    units, depth = w.shape
    x = ctx.emit(R.reshape(args[0], (ctx.inputs[0].size // depth, depth)))
    in_off, f_off, out_off = -int(attr(node, "input_zp")), -int(attr(node, "filter_zp", 0)), int(attr(node, "output_zp"))
    lo, hi = int(attr(node, "act_min")), int(attr(node, "act_max"))
    has_bias = len(args) > 2 and args[2] is not None

    def fn(xt, wt, *rest):
        b, mult, shift = (rest if len(rest) == 3 else (None,) + tuple(rest))
        k = te.reduce_axis((0, depth), "k")
        a = te.compute((int(xt.shape[0]), units), lambda i, j: te.sum(
            (xt[i, k].astype("int32") + in_off) * (wt[j, k].astype("int32") + f_off), axis=[k]), name="acc")

        def out(i, j):
            v = a[i, j] + (b[j] if b is not None else tirx.const(0, "int32"))
            c = j if int(mult.shape[0]) > 1 else 0
            return _clamp_s8(_mbqm_te(v, mult[c], shift[c]) + out_off, lo, hi)

        return te.compute((int(xt.shape[0]), units), out, name="requant")

    y = ctx.bb.emit_te(fn, x, args[1], *([args[2]] if has_bias else []), *ctx.consts)
    return R.reshape(y, ctx.outputs[0].shape)


def _binary_operands(ctx, args):
    """(output shape, both operands broadcast to it) of an elementwise int8 op."""
    from tvm.relax import op as R

    shape = ctx.outputs[0].shape
    xs = [x if t.shape == shape else ctx.emit(R.broadcast_to(x, shape)) for x, t in zip(args[:2], ctx.inputs[:2])]
    return shape, xs[0], xs[1]


def _add_relax(ctx, node, args):
    from tvm import te, tirx

    a = attr
    shape, x1, x2 = _binary_operands(ctx, args)
    o1, o2, oo = -int(a(node, "in1_zp")), -int(a(node, "in2_zp")), int(a(node, "output_zp"))
    ls = int(a(node, "left_shift"))
    m1, s1, m2, s2 = (int(a(node, k)) for k in ("in1_mult", "in1_shift", "in2_mult", "in2_shift"))
    mo, so = int(a(node, "out_mult")), int(a(node, "out_shift"))
    lo, hi = int(a(node, "act_min")), int(a(node, "act_max"))

    def c32(v):
        return tirx.const(v, "int32")

    def fn(t1, t2):
        v1 = te.compute(tuple(shape), lambda *i: _mbqm_te((t1[i].astype("int32") + o1) * (1 << ls), c32(m1), c32(s1)), name="keep_scaled1")
        v2 = te.compute(tuple(shape), lambda *i: _mbqm_te((t2[i].astype("int32") + o2) * (1 << ls), c32(m2), c32(s2)), name="keep_scaled2")
        return te.compute(tuple(shape), lambda *i: _clamp_s8(_mbqm_te(v1[i] + v2[i], c32(mo), c32(so)) + oo, lo, hi), name="add")

    return ctx.bb.emit_te(fn, x1, x2)


def _mul_relax(ctx, node, args):
    from tvm import te, tirx

    a = attr
    shape, x1, x2 = _binary_operands(ctx, args)
    o1, o2, oo = -int(a(node, "in1_zp")), -int(a(node, "in2_zp")), int(a(node, "output_zp"))
    mo, so = int(a(node, "out_mult")), int(a(node, "out_shift"))
    lo, hi = int(a(node, "act_min")), int(a(node, "act_max"))

    def fn(t1, t2):
        return te.compute(tuple(shape), lambda *i: _clamp_s8(_mbqm_te(
            (t1[i].astype("int32") + o1) * (t2[i].astype("int32") + o2), tirx.const(mo, "int32"), tirx.const(so, "int32")) + oo,
            lo, hi), name="mul")

    return ctx.bb.emit_te(fn, x1, x2)


def _pool_relax(kind: str):
    def emit(ctx, node, args):
        from tvm import te, tirx

        n_, h_, w_, c_ = ctx.inputs[0].shape
        _, oh, ow, _ = ctx.outputs[0].shape
        kh, kw = attr(node, "kernel")
        sh_, sw_ = attr(node, "strides", (1, 1))
        pt, pl, _, _ = _pads(node)
        lo, hi = int(attr(node, "act_min")), int(attr(node, "act_max"))

        def fn(x):
            rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")

            def inb(y, xx):
                ih, iw = y * sh_ - pt + rh, xx * sw_ - pl + rw
                return ih, iw, tirx.all(ih >= 0, ih < h_, iw >= 0, iw < w_)

            if kind == "max":
                def mx(n, y, xx, c):
                    ih, iw, ok = inb(y, xx)
                    return te.max(tirx.if_then_else(ok, x[n, ih, iw, c].astype("int32"), tirx.const(-128, "int32")), axis=[rh, rw])

                m = te.compute((n_, oh, ow, c_), mx, name="max")
                return te.compute((n_, oh, ow, c_), lambda *i: _clamp_s8(m[i], lo, hi), name="clamp")

            def total(n, y, xx, c):
                ih, iw, ok = inb(y, xx)
                return te.sum(tirx.if_then_else(ok, x[n, ih, iw, c].astype("int32"), tirx.const(0, "int32")), axis=[rh, rw])

            def count(n, y, xx, c):
                _, _, ok = inb(y, xx)
                return te.sum(tirx.if_then_else(ok, tirx.const(1, "int32"), tirx.const(0, "int32")), axis=[rh, rw])

            s = te.compute((n_, oh, ow, c_), total, name="sum")
            k = te.compute((n_, oh, ow, c_), count, name="count")

            def avg(*i):
                half = tirx.truncdiv(k[i], 2)
                v = tirx.Select(s[i] > 0, tirx.truncdiv(s[i] + half, k[i]), tirx.truncdiv(s[i] - half, k[i]))
                return _clamp_s8(v, lo, hi)

            return te.compute((n_, oh, ow, c_), avg, name="avg")

        return ctx.bb.emit_te(fn, args[0])

    return emit


register(
    OpDef("Conv2D", _conv_shape, _conv_ref, _conv_relax(False), _conv_macs, relax_consts=_requant_consts, check=_conv_check, domain=DOMAIN, c_kernel=_conv_c,
          notes="TFLite CONV_2D int8, per-channel requant, NHWC / OHWI"),
    OpDef("DepthwiseConv2D", _dw_shape, _dw_ref, _conv_relax(True), _dw_macs, relax_consts=_requant_consts, check=_dw_check, domain=DOMAIN, c_kernel=_dw_c,
          notes="TFLite DEPTHWISE_CONV_2D int8, filter 1HW(C*M)"),
    OpDef("FullyConnected", _fc_shape, _fc_ref, _fc_relax, _fc_macs, relax_consts=_requant_consts, check=_fc_check, domain=DOMAIN, c_kernel=_fc_c,
          notes="TFLite FULLY_CONNECTED int8, weights (units, depth)"),
    OpDef("AveragePool2D", _pool_shape, _pool_ref(qmath.avgpool_s8), _pool_relax("avg"), _pool_macs, check=_check_rank4, domain=DOMAIN,
          c_kernel=_pool_c("avg"),
          notes="divides by the count of in-image taps, rounding half away from zero"),
    OpDef("MaxPool2D", _pool_shape, _pool_ref(qmath.maxpool_s8), _pool_relax("max"), _pool_macs, check=_check_rank4, domain=DOMAIN,
          c_kernel=_pool_c("max")),
    OpDef("Softmax", _same_shape, _softmax_ref, None, lambda n, i, o: o[0].size, check=_softmax_check, domain=DOMAIN,
          c_kernel=_softmax_c,
          notes="gemmlowp fixed-point exp, int8 in, int8 out (scale 1/256, zp -128)"),
    OpDef("SoftmaxLut", _same_shape, _softmax_lut_ref, None, lambda n, i, o: o[0].size, check=_softmax_lut_check,
          domain=DOMAIN, c_kernel=_softmax_lut_c,
          notes="int8 softmax at any output scale: exp table (Q20), one half-to-even rounding (ONNX QDQ models)"),
    OpDef("Reshape", _reshape_shape, _reshape_ref, None, alias=True, domain=DOMAIN),
    OpDef("Add", _binary_shape, _add_ref, _add_relax, lambda n, i, o: o[0].size, check=_binary_check, inplace=(0, 1),
          domain=DOMAIN, c_kernel=_add_c),
    OpDef("Mul", _binary_shape, _mul_ref, _mul_relax, lambda n, i, o: o[0].size, check=_binary_check, inplace=(0, 1),
          domain=DOMAIN, c_kernel=_mul_c),
    OpDef("Concatenation", _concat_shape, _concat_ref, None, _copy_macs, domain=DOMAIN, c_kernel=_concat_c,
          notes="int8 inputs share the output's quantization (no rescale)"),
    OpDef("Pad", _pad_shape, _pad_ref, None, _copy_macs, domain=DOMAIN, c_kernel=_pad_c),
    OpDef("StridedSlice", _slice_out_shape, _slice_ref, None, _copy_macs, domain=DOMAIN,
          notes="begin/end/stride resolved at import; shrink/new axes folded into 'shape'"),
    OpDef("Quantize", _same_shape, _quantize_ref, None, lambda n, i, o: o[0].size, inplace=(), domain=DOMAIN,
          c_kernel=_quantize_c, notes="float32 -> int8 (roundf), or int8 -> int8 requantize"),
    OpDef("Dequantize", _same_shape, _dequantize_ref, None, lambda n, i, o: o[0].size, domain=DOMAIN,
          c_kernel=_dequantize_c),
    OpDef("Logistic", _same_shape, _sigmoid_like_ref(False), None, lambda n, i, o: o[0].size, check=_int8_only, domain=DOMAIN,
          c_kernel=_sigmoid_like_c("logistic"), notes="gemmlowp fixed-point logistic (TFLM), output scale 1/256 zp -128"),
    OpDef("Tanh", _same_shape, _sigmoid_like_ref(True), None, lambda n, i, o: o[0].size, check=_int8_only, domain=DOMAIN,
          c_kernel=_sigmoid_like_c("tanh"), notes="gemmlowp fixed-point tanh (TFLM), output scale 1/128 zp 0"),
    OpDef("Lut", _same_shape, _lut_ref, None, lambda n, i, o: o[0].size, check=_int8_only, inplace=(0,), domain=DOMAIN,
          c_kernel=_lut_c, notes="int8 -> int8 through a 256-entry table (elementwise functions at any scales)"),
)

__all__ = [
    "DOMAIN",
    "activation_range",
    "add_attrs",
    "calculate_input_radius",
    "conv_requant",
    "fc_requant",
    "mbqm",
    "mul_attrs",
    "quantize_multiplier",
    "sigmoid_tanh_attrs",
    "softmax_attrs",
]
