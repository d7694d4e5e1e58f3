"""Integer (int8) ops with TFLite / TFLite Micro semantics, domain "edgec.q".

The TFLite frontend (edgec/frontend/tflite_frontend.py) turns every TFLite
operator into one of these nodes, with everything TFLite computes in its
`Prepare` step resolved at import into plain node attributes: explicit pads,
strides, dilations, zero points, the fixed-point requantization multipliers and
shifts, and the integer clamp of the fused activation. The NumPy references
below read only those attributes, never the tensors' QuantParams, so a kernel
(runtime_c) and the reference use the very same numbers.

The references are bit-exact with TFLite Micro's reference kernels (which
CMSIS-NN matches): double-rounding `MultiplyByQuantizedMultiplier`
(gemmlowp `SaturatingRoundingDoublingHighMul` + `RoundingDivideByPOT`; TFLM is
built without TFLITE_SINGLE_ROUNDING), gemmlowp fixed-point exp / reciprocal /
logistic / tanh, and C's truncating integer division where the kernels use it.
See docs/int8.md for the attribute reference and the places that need care.

Layout is TFLite's: activations NHWC, conv filters OHWI, depthwise filters
1HW(C*M), fully-connected weights (units, depth).

`edgec/qmath.py` (shared QuantizeMultiplier etc.) did not exist when this was
written; the fixed-point helpers here are private and self-contained.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from edgec.ir import Node, Tensor
from edgec.ops.registry import OpDef, attr, broadcast_shape, register

DOMAIN = "edgec.q"

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

_QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (INT32_MIN, INT32_MAX)}


# =============================================================================
# Import-time arithmetic (what TFLite does in Prepare), on Python scalars
# =============================================================================

def round_half_away(x: float) -> float:
    """C's std::round / roundf (TfLiteRound): halves away from zero, exact."""
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += 1 if x > 0 else -1
    return float(t)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier (double-rounding build): real ~= m * 2^(shift-31).

    Returns (multiplier in [2^30, 2^31), shift); shift > 0 is a left shift."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed > (1 << 31):
        raise ValueError(f"bad multiplier {real}")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:  # flush tiny multipliers to zero, as TFLite does
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def activation_range(activation: str, scale: float, zero_point: int, dtype: str = "int8") -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized: the integer clamp of a fused activation.

    `f / scale` is a float32 division rounded with roundf, as in TFLite."""
    qmin, qmax = _QRANGE[dtype]
    s = np.float32(scale)

    def quantize(f: float) -> int:
        return int(zero_point) + int(round_half_away(float(np.float32(f) / s)))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"fused activation {activation} has no integer clamp")


def conv_requant(input_scale: float, filter_scales: Sequence[float], output_scale: float, channels: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-output-channel multipliers of CONV_2D / DEPTHWISE_CONV_2D (and per-channel
    FULLY_CONNECTED): double(in) * double(filter[c]) / double(out), TFLite's order."""
    fs = [float(np.float32(s)) for s in filter_scales]
    if len(fs) == 1:
        fs = fs * channels
    pairs = [quantize_multiplier(float(np.float32(input_scale)) * f / float(np.float32(output_scale))) for f in fs]
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


def fc_requant_per_tensor(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """Per-tensor FULLY_CONNECTED (GetQuantizedConvolutionMultipler): the scale product
    is taken in float32 *before* widening to double, unlike conv."""
    prod = float(np.float32(input_scale) * np.float32(filter_scale))
    return quantize_multiplier(prod / float(np.float32(output_scale)))


def add_requant(s1: float, s2: float, so: float, left_shift: int = 20) -> dict:
    """TFLite ADD int8 parameters (CalculateOpDataAdd)."""
    s1, s2, so = (float(np.float32(v)) for v in (s1, s2, so))
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    for what, sh in (("input1", sh1), ("input2", sh2), ("output", sho)):
        if sh > 0:
            raise ValueError(f"ADD {what} multiplier is not smaller than one")
    return dict(left_shift=left_shift, in1_mult=m1, in1_shift=sh1, in2_mult=m2, in2_shift=sh2, out_mult=mo, out_shift=sho)


def mul_requant(s1: float, s2: float, so: float) -> tuple[int, int]:
    s1, s2, so = (float(np.float32(v)) for v in (s1, s2, so))
    return quantize_multiplier(s1 * s2 / so)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    v = 1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits)) / (1 << input_left_shift)
    return int(math.floor(v))


def softmax_params(beta: float, input_scale: float) -> dict:
    """TFLite PreprocessSoftmaxScaling + CalculateInputRadius for int8 -> int8 softmax."""
    kbits = 5
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * (1 << (31 - kbits)), (1 << 31) - 1.0)
    if not real > 1.0:
        raise ValueError("softmax beta * input scale is too small")
    mult, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError("softmax multiplier shift is negative")
    diff_min = -calculate_input_radius(kbits, shift)
    return dict(input_multiplier=mult, input_left_shift=shift, diff_min=diff_min)


def sigmoid_tanh_params(input_scale: float) -> dict:
    """TFLM LOGISTIC / TANH int8 Prepare: Q4.27 input rescale (frexp, no saturation fix-up)."""
    kbits = 4
    real = float(np.float32(input_scale)) * float(1 << (31 - kbits))
    q, shift = math.frexp(real)
    mult = int(round_half_away(q * (1 << 31)))
    return dict(input_multiplier=mult, input_left_shift=shift, input_range_radius=calculate_input_radius(kbits, shift, 31))


# =============================================================================
# Run-time arithmetic, vectorized: int32 values held in int64 arrays
# =============================================================================

def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement int32 wrap-around (what the C code does on overflow)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _trunc_div(x: np.ndarray, d) -> np.ndarray:
    """C integer division (truncates toward zero), d > 0."""
    q = np.abs(x) // d
    return np.where(x < 0, -q, q)


def srdhm(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul (int32)."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    res = _trunc_div(ab + nudge, 1 << 31)
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, res)


def rdbpot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: rounding arithmetic right shift (ties away from 0)."""
    x, e = _i64(x), _i64(exponent)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def mbqm(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier, double-rounding flavour (TFLM default)."""
    x, m, s = _i64(x), _i64(multiplier), _i64(shift)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    return rdbpot(srdhm(_wrap32(x << left), m), right)


def _sat_lshift(x: np.ndarray, e: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0."""
    thr = (1 << (31 - e)) - 1
    r = x << e
    r = np.where(x > thr, INT32_MAX, r)
    return np.where(x < -thr, INT32_MIN, r)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    const_term = 1895147668  # exp(-1/8) in Q0.31
    one_third = 715827883
    x = _wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(_wrap32(srdhm(_wrap32(x4_over_4 + x3), one_third) + x2), 1)
    return _wrap32(const_term + srdhm(const_term, _wrap32(x + poly)))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: Q(integer_bits) input -> Q0.31 output."""
    a = _i64(a)
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    mask = one_quarter - 1
    a_mod = (a & mask) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(_sat_lshift(a_mod, integer_bits) if integer_bits > 0 else a_mod)
    remainder = _wrap32(a_mod - a)
    for exponent, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            bit = 1 << (frac + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, mult), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_f2(a: np.ndarray) -> np.ndarray:
    """Shared body of one_over_one_plus_x / one_minus_x_over_one_plus_x: x ~= 1/(1+a) in Q2.29."""
    s = a + INT32_MAX
    half_den = _trunc_div(s + np.where(s >= 0, 1, -1), 2)  # RoundingHalfSum(a, One)
    x = _wrap32(1515870810 + srdhm(half_den, -1010580540))  # 48/17 - 32/17 * d
    for _ in range(3):
        hdx = srdhm(half_den, x)
        one_minus = _wrap32((1 << 29) - hdx)
        x = _wrap32(x + _sat_lshift(srdhm(x, one_minus), 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    return _sat_lshift(_newton_reciprocal_f2(_i64(a)), 1)


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    return _sat_lshift(_wrap32(_newton_reciprocal_f2(_i64(a)) - (1 << 29)), 2)


def fixed_logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: Q(integer_bits) raw -> Q0.31 raw."""
    a = _i64(a)
    pos = a > 0
    abs_in = np.where(pos, a, _wrap32(-a))
    r_pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(_wrap32(-abs_in), integer_bits))
    r_neg = INT32_MAX - r_pos
    return np.where(a == 0, 1 << 30, np.where(pos, r_pos, r_neg))


def fixed_tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh: Q(integer_bits) raw -> Q0.31 raw."""
    a = _i64(a)
    neg = a < 0
    n = np.where(neg, a, _wrap32(-a))
    # neg_tanh_on_negative_values: ExactMulByPot<1> keeps the raw value, one more integer bit
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(neg, _wrap32(-t), t))


def _clz32(x: np.ndarray) -> np.ndarray:
    x = _i64(x) & 0xFFFFFFFF
    out = np.full(x.shape, 32, dtype=np.int64)
    nz = x != 0
    # exact for integers < 2^53: frexp gives the bit length
    _, e = np.frexp(x[nz].astype(np.float64))
    out[nz] = 32 - e
    return out


def get_reciprocal(x, x_integer_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal -> (Q0.31 reciprocal, num_bits_over_unit)."""
    x = _i64(x)
    hp1 = _clz32(x)
    nbou = x_integer_bits - hp1
    shifted = (((x & 0xFFFFFFFF) << hp1) - (1 << 31)) & 0xFFFFFFFF
    shifted = np.where(shifted >= (1 << 31), shifted - (1 << 32), shifted)
    return one_over_one_plus_x_for_x_in_0_1(shifted), nbou


# =============================================================================
# Op bundles
# =============================================================================

def _ins_dtype(ins) -> str:
    return ins[0].dtype


def _clamp_cast(acc: np.ndarray, lo: int, hi: int, dtype: str) -> np.ndarray:
    return np.clip(acc, lo, hi).astype(dtype)


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


def _windows(xp: np.ndarray, oh: int, ow: int, kh: int, kw: int, node) -> np.ndarray:
    """(N, OH, OW, KH, KW, C) strided view over a padded NHWC array."""
    sh, sw = attr(node, "strides", (1, 1))
    dh, dw = attr(node, "dilations", (1, 1))
    n, _, _, c = xp.shape
    st = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp,
        shape=(n, oh, ow, kh, kw, c),
        strides=(st[0], st[1] * sh, st[2] * sw, st[1] * dh, st[2] * dw, st[3]),
        writeable=False,
    )


def _pad_nhwc(x: np.ndarray, node, value) -> np.ndarray:
    pt, pl, pb, pr = _pads(node)
    return np.pad(x, [(0, 0), (pt, pb), (pl, pr), (0, 0)], constant_values=value)


def _requant(acc: np.ndarray, node) -> np.ndarray:
    mult = np.asarray(attr(node, "out_mult"), np.int64)
    shift = np.asarray(attr(node, "out_shift"), np.int64)
    y = mbqm(_wrap32(acc), mult, shift) + int(attr(node, "output_zp"))
    return _clamp_cast(y, attr(node, "act_min"), attr(node, "act_max"), attr(node, "out_dtype", "int8"))


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
    zp = int(attr(node, "input_zp"))
    n, h, wd, c = x.shape
    o, kh, kw, ci = w.shape
    oh, ow = _out_hw(h, wd, kh, kw, node)
    # padding with the input zero point == TFLite skipping out-of-image taps
    xp = _pad_nhwc(x.astype(np.int32), node, zp) - zp
    v = _windows(xp, oh, ow, kh, kw, node)  # N, OH, OW, KH, KW, C
    groups = c // ci
    og = o // groups
    outs = []
    for g in range(groups):
        vg = v[..., g * ci : (g + 1) * ci].reshape(n * oh * ow, kh * kw * ci).astype(np.float64)
        wg = w[g * og : (g + 1) * og].reshape(og, kh * kw * ci).astype(np.float64)
        outs.append(vg @ wg.T)  # exact: integer sums far below 2^53
    acc = np.rint(np.concatenate(outs, axis=1)).astype(np.int64).reshape(n, oh, ow, o)
    if b is not None:
        acc = acc + b.astype(np.int64)
    return [_requant(acc, node)]


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
    zp = int(attr(node, "input_zp"))
    dm = int(attr(node, "depth_multiplier", 1))
    n, h, wd, c = x.shape
    _, kh, kw, oc = w.shape
    oh, ow = _out_hw(h, wd, kh, kw, node)
    xp = (_pad_nhwc(x.astype(np.int32), node, zp) - zp).astype(np.float64)
    v = _windows(xp, oh, ow, kh, kw, node)  # N, OH, OW, KH, KW, C
    wf = w.reshape(kh, kw, c, dm).astype(np.float64)
    acc = np.zeros((n, oh, ow, c, dm), np.float64)
    for i in range(kh):
        for j in range(kw):
            acc += v[:, :, :, i, j, :, None] * wf[i, j]
    acc = np.rint(acc).astype(np.int64).reshape(n, oh, ow, oc)
    if b is not None:
        acc = acc + b.astype(np.int64)
    return [_requant(acc, node)]


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
    units, depth = w.shape
    xf = x.reshape(-1, depth).astype(np.float64) - int(attr(node, "input_zp"))
    wf = w.astype(np.float64) - int(attr(node, "filter_zp", 0))
    acc = np.rint(xf @ wf.T).astype(np.int64)
    if b is not None:
        acc = acc + b.astype(np.int64)
    y = _requant(acc, node)
    shape = _fc_shape(node, [Tensor("x", x.shape, x.dtype), Tensor("w", w.shape, w.dtype)])[0][0]
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


def _avgpool_ref(node, xs):
    x = xs[0]
    n, h, w, c = x.shape
    kh, kw = attr(node, "kernel")
    oh, ow = _out_hw(h, w, kh, kw, node)
    s = _windows(_pad_nhwc(x.astype(np.int64), node, 0), oh, ow, kh, kw, node).sum(axis=(3, 4))
    ones = _pad_nhwc(np.ones((1, h, w, 1), np.int64), node, 0)
    cnt = _windows(ones, oh, ow, kh, kw, node).sum(axis=(3, 4))  # only taps inside the image count
    half = cnt // 2
    acc = _trunc_div(np.where(s > 0, s + half, s - half), cnt)  # C division, rounds half away
    return [_clamp_cast(acc, attr(node, "act_min"), attr(node, "act_max"), x.dtype)]


def _maxpool_ref(node, xs):
    x = xs[0]
    n, h, w, c = x.shape
    kh, kw = attr(node, "kernel")
    oh, ow = _out_hw(h, w, kh, kw, node)
    m = _windows(_pad_nhwc(x.astype(np.int64), node, INT32_MIN), oh, ow, kh, kw, node).max(axis=(3, 4))
    return [_clamp_cast(m, attr(node, "act_min"), attr(node, "act_max"), x.dtype)]


# ---- SOFTMAX ---------------------------------------------------------------------

def _same_shape(node, ins):
    return [(ins[0].shape, attr(node, "out_dtype", ins[0].dtype))]


def _softmax_ref(node, xs):
    x = xs[0]
    xi = x.astype(np.int64)
    mult = int(attr(node, "input_multiplier"))
    lshift = int(attr(node, "input_left_shift"))
    diff_min = int(attr(node, "diff_min"))
    diff = xi - xi.max(axis=-1, keepdims=True)
    keep = diff >= diff_min
    scaled = srdhm(_wrap32(diff << lshift), mult)  # MultiplyByQuantizedMultiplierGreaterThanOne
    exps = exp_on_negative_values(scaled, 5)  # Q5.26 -> Q0.31
    sum_of_exps = np.where(keep, rdbpot(exps, 12), 0).sum(axis=-1, keepdims=True)  # Rescale<12>, Q12.19
    recip, nbou = get_reciprocal(sum_of_exps, 12)
    out = rdbpot(srdhm(recip, exps), nbou + 31 - 8) - 128
    out = np.where(keep, np.clip(out, -128, 127), -128)
    return [out.astype(np.int8)]


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
    a, b = xs[0].astype(np.int64), xs[1].astype(np.int64)
    ls = int(attr(node, "left_shift"))
    a1 = mbqm((a - int(attr(node, "in1_zp"))) << ls, attr(node, "in1_mult"), attr(node, "in1_shift"))
    b1 = mbqm((b - int(attr(node, "in2_zp"))) << ls, attr(node, "in2_mult"), attr(node, "in2_shift"))
    raw = mbqm(_wrap32(a1 + b1), attr(node, "out_mult"), attr(node, "out_shift")) + int(attr(node, "output_zp"))
    return [_clamp_cast(raw, attr(node, "act_min"), attr(node, "act_max"), attr(node, "out_dtype", "int8"))]


def _mul_ref(node, xs):
    a = xs[0].astype(np.int64) - int(attr(node, "in1_zp"))
    b = xs[1].astype(np.int64) - int(attr(node, "in2_zp"))
    raw = mbqm(_wrap32(a * b), attr(node, "out_mult"), attr(node, "out_shift")) + int(attr(node, "output_zp"))
    return [_clamp_cast(raw, attr(node, "act_min"), attr(node, "act_max"), attr(node, "out_dtype", "int8"))]


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
        q = np.where(np.abs(q - np.trunc(q)) >= 0.5, np.trunc(q) + np.sign(q), np.trunc(q))  # roundf
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
        x = xs[0].astype(np.int64) - int(attr(node, "input_zp"))
        radius = int(attr(node, "input_range_radius"))
        q4 = mbqm(x, int(attr(node, "input_multiplier")), int(attr(node, "input_left_shift")))
        if tanh:
            y = np.clip(rdbpot(fixed_tanh(q4, 4), 31 - 7), -128, 127)
        else:
            y = np.clip(rdbpot(fixed_logistic(q4, 4), 31 - 8) - 128, -128, 127)
        y = np.where(x <= -radius, -128, np.where(x >= radius, 127, y))
        return [y.astype(np.int8)]

    return ref


def _int8_only(node, ins):
    if ins[0].dtype != "int8":
        return f"input dtype {ins[0].dtype} (int8 only)"
    return None


register(
    OpDef("Conv2D", _conv_shape, _conv_ref, None, _conv_macs, check=_conv_check, domain=DOMAIN,
          notes="TFLite CONV_2D int8, per-channel requant, NHWC / OHWI"),
    OpDef("DepthwiseConv2D", _dw_shape, _dw_ref, None, _dw_macs, check=_dw_check, domain=DOMAIN,
          notes="TFLite DEPTHWISE_CONV_2D int8, filter 1HW(C*M)"),
    OpDef("FullyConnected", _fc_shape, _fc_ref, None, _fc_macs, check=_fc_check, domain=DOMAIN,
          notes="TFLite FULLY_CONNECTED int8, weights (units, depth)"),
    OpDef("AveragePool2D", _pool_shape, _avgpool_ref, None, _pool_macs, check=_check_rank4, domain=DOMAIN,
          notes="divides by the count of in-image taps, rounding half away from zero"),
    OpDef("MaxPool2D", _pool_shape, _maxpool_ref, None, _pool_macs, check=_check_rank4, domain=DOMAIN),
    OpDef("Softmax", _same_shape, _softmax_ref, None, lambda n, i, o: o[0].size, check=_softmax_check, domain=DOMAIN,
          notes="gemmlowp fixed-point exp, int8 in, int8 out (scale 1/256, zp -128)"),
    OpDef("Reshape", _reshape_shape, _reshape_ref, None, alias=True, domain=DOMAIN),
    OpDef("Add", _binary_shape, _add_ref, None, lambda n, i, o: o[0].size, check=_binary_check, inplace=(0, 1), domain=DOMAIN),
    OpDef("Mul", _binary_shape, _mul_ref, None, lambda n, i, o: o[0].size, check=_binary_check, inplace=(0, 1), domain=DOMAIN),
    OpDef("Concatenation", _concat_shape, _concat_ref, None, _copy_macs, domain=DOMAIN,
          notes="int8 inputs share the output's quantization (no rescale)"),
    OpDef("Pad", _pad_shape, _pad_ref, None, _copy_macs, domain=DOMAIN),
    OpDef("StridedSlice", _slice_out_shape, _slice_ref, None, _copy_macs, domain=DOMAIN,
          notes="begin/end/stride resolved at import; shrink/new axes folded into 'shape'"),
    OpDef("Quantize", _same_shape, _quantize_ref, None, lambda n, i, o: o[0].size, inplace=(), domain=DOMAIN,
          notes="float32 -> int8 (roundf), or int8 -> int8 requantize"),
    OpDef("Dequantize", _same_shape, _dequantize_ref, None, lambda n, i, o: o[0].size, domain=DOMAIN),
    OpDef("Logistic", _same_shape, _sigmoid_like_ref(False), None, lambda n, i, o: o[0].size, check=_int8_only, domain=DOMAIN,
          notes="gemmlowp fixed-point logistic (TFLM), output scale 1/256 zp -128"),
    OpDef("Tanh", _same_shape, _sigmoid_like_ref(True), None, lambda n, i, o: o[0].size, check=_int8_only, domain=DOMAIN,
          notes="gemmlowp fixed-point tanh (TFLM), output scale 1/128 zp 0"),
)

__all__ = [
    "DOMAIN",
    "activation_range",
    "add_requant",
    "calculate_input_radius",
    "conv_requant",
    "fc_requant_per_tensor",
    "mbqm",
    "mul_requant",
    "quantize_multiplier",
    "round_half_away",
    "sigmoid_tanh_params",
    "softmax_params",
]
