"""TFLite / TFLite Micro integer arithmetic, in NumPy.

Two jobs, one source of truth:

* **Parameters.** How TFLite Micro's `Prepare` turns float scales into the
  integers its int8 kernels use (`quantize_multiplier`, `conv_quant_params`,
  `add_params`, `softmax_params`, ...). edgec's code generator calls these to
  fill the argument structs of `runtime_c/kernels` (see docs/kernels.md), so the
  generated C computes exactly what TFLite Micro computes.
* **Reference kernels.** Bit-exact NumPy versions of TFLite Micro's reference
  int8 kernels (`reference_integer_ops::ConvPerChannel`, `DepthwiseConvPerChannel`,
  `FullyConnected[PerChannel]`, `Add`, `Mul`, `AveragePool`, `MaxPool`, the
  gemmlowp-fixed-point `Softmax`, `Logistic` and `Tanh`, `Pad`, `Concatenation`).
  The C kernels are tested against them.

Rounding follows TFLite's default build (`TFLITE_SINGLE_ROUNDING=0`):
`MultiplyByQuantizedMultiplier(x, m, s)` is
`RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << max(s, 0), m), max(-s, 0))`,
i.e. a round-half-away-from-zero high multiply followed by a second
round-half-away-from-zero shift. `single_rounding=True` gives the other build's
single 64-bit rounding shift, for comparison only.

All array functions take and return integer NumPy arrays; int32 semantics
(wrap-around of `x << left_shift`) are emulated in int64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "AddParams",
    "MulParams",
    "SoftmaxParams",
    "SigmoidParams",
    "tflite_round",
    "quantize_multiplier",
    "quantize_multiplier_greater_than_one",
    "quantize_multiplier_smaller_than_one_exp",
    "calculate_input_radius",
    "saturating_rounding_doubling_high_mul",
    "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_half_up",
    "requantize",
    "conv2d_acc",
    "depthwise_conv2d_acc",
    "fully_connected_acc",
    "activation_range",
    "compute_padding",
    "conv_quant_params",
    "fc_quant_params",
    "add_params",
    "mul_params",
    "softmax_params",
    "logistic_params",
    "tanh_params",
    "conv2d_s8",
    "depthwise_conv2d_s8",
    "fully_connected_s8",
    "add_s8",
    "mul_s8",
    "avgpool_s8",
    "maxpool_s8",
    "softmax_s8",
    "logistic_s8",
    "tanh_s8",
    "logistic_lut_s8",
    "tanh_lut_s8",
    "pad_s8",
    "concat_s8",
    "convolve_s8_buffer_size",
    "convolve_1x1_s8_buffer_size",
]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
_I64 = np.int64


# --- scalar parameter arithmetic (TFLite's quantization_util.cc) ------------------------


def tflite_round(x: float) -> int:
    """`TfLiteRound` / `std::round`: round half away from zero (not Python's banker's)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def quantize_multiplier(real_multiplier: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """`QuantizeMultiplier`: real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31).

    Returns (multiplier, shift); shift > 0 is a left shift. Multipliers below
    2^-31 flush to (0, 0) as in TFLite.
    """
    real_multiplier = float(real_multiplier)
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = tflite_round(q * (1 << 31))
    if abs(q_fixed) > (1 << 31):
        raise ValueError(f"QuantizeMultiplier: bad significand for {real_multiplier!r}")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if single_rounding and shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return int(q_fixed), int(shift)


def quantize_multiplier_greater_than_one(real_multiplier: float) -> tuple[int, int]:
    if not real_multiplier > 1.0:
        raise ValueError(f"multiplier {real_multiplier!r} must be > 1")
    m, s = quantize_multiplier(real_multiplier)
    if s < 0:
        raise ValueError(f"multiplier {real_multiplier!r} gave a negative shift")
    return m, s


def quantize_multiplier_smaller_than_one_exp(real_multiplier: float) -> tuple[int, int]:
    if not 0.0 < real_multiplier < 1.0:
        raise ValueError(f"multiplier {real_multiplier!r} must be in (0, 1)")
    m, s = quantize_multiplier(real_multiplier)
    if s > 0:
        raise ValueError(f"multiplier {real_multiplier!r} gave a positive shift")
    return m, s


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """`CalculateInputRadius` (float path, as TFLite builds it)."""
    max_input_rescaled = (
        1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
        / float(1 << input_left_shift)
    )
    return int(math.floor(max_input_rescaled))


def _frexp_multiplier(real: float) -> tuple[int, int]:
    """The bare frexp + round that TFLM's Logistic/Tanh Prepare use (no 2^31 fix-up)."""
    q, shift = math.frexp(real)
    # static_cast<int32_t> of a significand that rounded up to 2^31 wraps.
    return int(_wrap32(tflite_round(q * (1 << 31)))), shift


# --- vectorised fixed-point primitives (gemmlowp fixedpoint.h) --------------------------


def _wrap32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=_I64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp `SaturatingRoundingDoublingHighMul` for int32 operands."""
    a = np.asarray(a, dtype=_I64)
    b = np.asarray(b, dtype=_I64)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    t = ab + nudge
    # C++ integer division truncates toward zero.
    res = np.where(t >= 0, t >> 31, -((-t) >> 31))
    return np.where(overflow, INT32_MAX, res).astype(_I64)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp `RoundingDivideByPOT`: x / 2^exponent, ties away from zero."""
    x = np.asarray(x, dtype=_I64)
    e = np.asarray(exponent, dtype=_I64)
    if np.any((e < 0) | (e > 31)):
        raise ValueError("RoundingDivideByPOT exponent must be in [0, 31]")
    mask = (np.ones_like(e) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift, *, single_rounding: bool = False) -> np.ndarray:
    """`MultiplyByQuantizedMultiplier(int32 x, int32 multiplier, int shift)`.

    `multiplier` and `shift` broadcast against `x` (per-channel: last axis).
    """
    x = np.asarray(x, dtype=_I64)
    m = np.asarray(multiplier, dtype=_I64)
    s = np.asarray(shift, dtype=_I64)
    if single_rounding:
        total = 31 - s
        return (x * m + (np.ones_like(total) << (total - 1))) >> total
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(_wrap32(x << left), m), right)


def multiply_by_quantized_multiplier_half_up(x, multiplier, shift) -> np.ndarray:
    """The rounding of TFLite's *optimized* int8 kernels (NEON `vqrdmulh` + `vrshl`, and
    their SSE emulation in LiteRT builds): both roundings go half up instead of
    half away from zero. Differs from `multiply_by_quantized_multiplier` only on
    exact negative ties. Not what TFLite Micro computes; kept to explain where
    LiteRT's default kernels disagree with TFLite Micro."""
    x = np.asarray(x, dtype=_I64)
    m = np.asarray(multiplier, dtype=_I64)
    s = np.asarray(shift, dtype=_I64)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    hi = (_wrap32(x << left) * m + (1 << 30)) >> 31
    return (hi + np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0)) >> right


def requantize(acc, multiplier, shift, output_offset: int, act_min: int, act_max: int, *, rounding: str = "tflite") -> np.ndarray:
    """The common tail of TFLite's int8 kernels: scale, add the zero point, clamp, to int8.

    rounding: "tflite" (TFLite / TFLite Micro reference, the default build),
    "single" (a TFLITE_SINGLE_ROUNDING=1 build), "half_up" (TFLite's optimized kernels).
    """
    if rounding == "tflite":
        y = multiply_by_quantized_multiplier(acc, multiplier, shift)
    elif rounding == "single":
        y = multiply_by_quantized_multiplier(acc, multiplier, shift, single_rounding=True)
    elif rounding == "half_up":
        y = multiply_by_quantized_multiplier_half_up(acc, multiplier, shift)
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return np.clip(y + output_offset, act_min, act_max).astype(np.int8)


# --- op parameters, as TFLite Micro's Prepare computes them -----------------------------


@dataclass(frozen=True)
class PrunedChannels:
    """Output channels of a conv/FC layer whose filters are all zero (pruned in
    training). Their accumulator is the bias alone, so their output is the
    constant requantize(bias) whatever the input."""

    live: np.ndarray  # int: channels computed, ascending
    dead: np.ndarray  # int: constant channels, ascending
    dead_value: np.ndarray  # int8: their output


def pruned_channels(w: np.ndarray, bias, multiplier, shift, output_offset: int, act_min: int,
                    act_max: int) -> PrunedChannels:
    """Split the output channels (w's first axis) into computed and constant ones."""
    n = w.shape[0]
    zero = ~np.any(w.reshape(n, -1) != 0, axis=1)
    dead = np.flatnonzero(zero)
    b = np.zeros(n, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
    m = np.broadcast_to(np.asarray(multiplier, np.int64).reshape(-1), (n,))
    s = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), (n,))
    values = requantize(b[dead], m[dead], s[dead], output_offset, act_min, act_max)
    return PrunedChannels(np.flatnonzero(~zero), dead, np.asarray(values, np.int8))


def activation_range(activation: str | int, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """`CalculateActivationRangeQuantized` for int8 outputs.

    `activation` is a TFLite ActivationFunctionType value or name: NONE (0),
    RELU (1), RELU_N1_TO_1 (2), RELU6 (3). Quantisation of the bounds is done
    in float32, as in TFLite (`TfLiteRound(f / scale)`).
    """
    names = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
    act = names.get(activation, activation) if isinstance(activation, int) else str(activation).upper()

    def q(f: float) -> int:
        return int(zero_point) + tflite_round(float(np.float32(f) / np.float32(scale)))

    if act == "NONE":
        return qmin, qmax
    if act == "RELU":
        return max(qmin, q(0.0)), qmax
    if act == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"unsupported fused activation {activation!r}")


def compute_padding(padding: str, in_size: int, filter_size: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """TFLite's output size and padding for one spatial axis: (out_size, pad_before, pad_after).

    `pad_before` is what TFLite kernels use (`padding_values`); the extra
    `offset` of odd total padding goes after, and the kernels never need it.
    """
    eff = (filter_size - 1) * dilation + 1
    p = str(padding).upper()
    if p == "SAME":
        out = (in_size + stride - 1) // stride
    elif p == "VALID":
        out = (in_size + stride - eff) // stride
    else:
        raise ValueError(f"unknown padding {padding!r}")
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2, total - total // 2


def conv_quant_params(input_scale: float, filter_scales: Sequence[float], output_scale: float, num_channels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel multipliers/shifts of CONV_2D / DEPTHWISE_CONV_2D / per-channel FULLY_CONNECTED.

    `PopulateConvolutionQuantizationParams`: effective = double(in) * double(f) / double(out),
    with float32 scales widened to double. A single filter scale is broadcast to
    `num_channels`.
    """
    fs = np.asarray(filter_scales, dtype=np.float32).reshape(-1)
    n = int(num_channels) if num_channels is not None else fs.size
    if fs.size == 1:
        fs = np.repeat(fs, n)
    ins = float(np.float32(input_scale))
    outs = float(np.float32(output_scale))
    pairs = [quantize_multiplier(ins * float(f) / outs) for f in fs]
    return np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32)


def fc_quant_params(input_scale: float, filter_scales: Sequence[float], output_scale: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """FULLY_CONNECTED multipliers: (multipliers, shifts, per_channel).

    Per-tensor (one filter scale) uses `GetQuantizedConvolutionMultipler`, whose
    product of scales is taken in float32 before widening:
    double(float(in * f)) / double(out). Per-channel is computed as for conv.
    """
    fs = np.asarray(filter_scales, dtype=np.float32).reshape(-1)
    if fs.size > 1:
        m, s = conv_quant_params(input_scale, fs, output_scale)
        return m, s, True
    real = float(np.float32(input_scale) * fs[0]) / float(np.float32(output_scale))
    mm, ss = quantize_multiplier(real)
    return np.array([mm], dtype=np.int32), np.array([ss], dtype=np.int32), False


@dataclass(frozen=True)
class AddParams:
    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    left_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def add_params(s1: float, z1: int, s2: float, z2: int, so: float, zo: int, activation: str | int = "NONE") -> AddParams:
    """ADD int8 (`CalculateOpDataAdd`): inputs rescaled to 2*max(s1, s2), left shift 20."""
    left_shift = 20
    s1d, s2d, sod = (float(np.float32(v)) for v in (s1, s2, so))
    twice_max = 2.0 * float(np.float32(max(np.float32(s1), np.float32(s2))))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(s1d / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(s2d / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << left_shift) * sod))
    lo, hi = activation_range(activation, so, zo)
    return AddParams(-int(z1), m1, sh1, -int(z2), m2, sh2, left_shift, int(zo), mo, sho, lo, hi)


@dataclass(frozen=True)
class MulParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def mul_params(s1: float, z1: int, s2: float, z2: int, so: float, zo: int, activation: str | int = "NONE") -> MulParams:
    """MUL int8 (`CalculateOpDataMul`): one multiplier s1 * s2 / so (doubles)."""
    real = float(np.float32(s1)) * float(np.float32(s2)) / float(np.float32(so))
    m, s = quantize_multiplier(real)
    lo, hi = activation_range(activation, so, zo)
    return MulParams(-int(z1), -int(z2), int(zo), m, s, lo, hi)


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_params(input_scale: float, beta: float = 1.0) -> SoftmaxParams:
    """SOFTMAX int8 -> int8 (`CalculateSoftmaxParams`, kScaledDiffIntegerBits = 5).

    Output must be scale 1/256, zero point -128 (TFLM enforces it).
    """
    k_scaled_diff_integer_bits = 5
    real = min(
        float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - k_scaled_diff_integer_bits)),
        float((1 << 31) - 1),
    )
    m, s = quantize_multiplier_greater_than_one(real)
    diff_min = -calculate_input_radius(k_scaled_diff_integer_bits, s)
    return SoftmaxParams(m, s, diff_min)


@dataclass(frozen=True)
class SigmoidParams:
    """LOGISTIC / TANH int8 parameters (TFLM `CalculateArithmeticOpDataLogistic`, `TanhPrepare`)."""

    input_zero_point: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


def logistic_params(input_scale: float, input_zero_point: int) -> SigmoidParams:
    """Output must be scale 1/256, zero point -128 (TFLM enforces the zero point)."""
    k_input_integer_bits = 4
    m, s = _frexp_multiplier(float(np.float32(input_scale)) * float(1 << (31 - k_input_integer_bits)))
    return SigmoidParams(int(input_zero_point), calculate_input_radius(k_input_integer_bits, s, 31), m, s)


def tanh_params(input_scale: float, input_zero_point: int) -> SigmoidParams:
    """Output is taken as scale 1/128, zero point 0."""
    return logistic_params(input_scale, input_zero_point)


# --- reference kernels -------------------------------------------------------------------


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _windows(x: np.ndarray, kh: int, kw: int, stride, padding, dilation, out_hw, pad_value: int) -> np.ndarray:
    """NHWC input -> (N, OH, OW, KH, KW, C) windows, out-of-image taps = pad_value."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    oh, ow = out_hw
    n, h, w, c = x.shape
    need_h = max((oh - 1) * sh + (kh - 1) * dh + 1, h + ph)
    need_w = max((ow - 1) * sw + (kw - 1) * dw + 1, w + pw)
    xp = np.full((n, need_h + ph, need_w + pw, c), pad_value, dtype=_I64)
    xp[:, ph:ph + h, pw:pw + w, :] = x
    out = np.empty((n, oh, ow, kh, kw, c), dtype=_I64)
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, i, j, :] = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw, :]
    return out


def conv2d_acc(x, w, bias, *, input_offset: int, stride=1, padding=0, dilation=1, out_hw: tuple[int, int]) -> np.ndarray:
    """The int32 accumulators (bias included) of CONV_2D, before requantization."""
    x = np.asarray(x)
    w = np.asarray(w, dtype=_I64)
    cout, kh, kw, kc = w.shape
    groups = x.shape[3] // kc
    win = _windows(x, kh, kw, stride, padding, dilation, out_hw, pad_value=-input_offset) + input_offset
    per_group = cout // groups
    acc = np.empty(win.shape[:3] + (cout,), dtype=_I64)
    for g in range(groups):
        cols = win[..., g * kc:(g + 1) * kc].reshape(win.shape[:3] + (-1,))
        wg = w[g * per_group:(g + 1) * per_group].reshape(per_group, -1)
        acc[..., g * per_group:(g + 1) * per_group] = cols @ wg.T
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=_I64)
    return acc


def conv2d_s8(x, w, bias, *, input_offset: int, output_offset: int, multiplier, shift, stride=1, padding=0,
              dilation=1, out_hw: tuple[int, int], act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """`reference_integer_ops::ConvPerChannel`. x: NHWC int8, w: (Cout, KH, KW, Cin/groups) int8."""
    acc = conv2d_acc(x, w, bias, input_offset=input_offset, stride=stride, padding=padding, dilation=dilation,
                     out_hw=out_hw)
    return requantize(acc, multiplier, shift, output_offset, act_min, act_max)


def depthwise_conv2d_acc(x, w, bias, *, input_offset: int, depth_multiplier: int = 1, stride=1, padding=0, dilation=1,
                         out_hw: tuple[int, int]) -> np.ndarray:
    """The int32 accumulators (bias included) of DEPTHWISE_CONV_2D."""
    x = np.asarray(x)
    w = np.asarray(w, dtype=_I64)
    _, kh, kw, cout = w.shape
    win = _windows(x, kh, kw, stride, padding, dilation, out_hw, pad_value=-input_offset) + input_offset
    win = np.repeat(win, depth_multiplier, axis=-1)  # output channel oc reads input channel oc // dm
    acc = np.einsum("nhwijc,ijc->nhwc", win, w[0])
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=_I64)
    return acc


def depthwise_conv2d_s8(x, w, bias, *, input_offset: int, output_offset: int, multiplier, shift, depth_multiplier: int = 1,
                        stride=1, padding=0, dilation=1, out_hw: tuple[int, int], act_min: int = -128,
                        act_max: int = 127) -> np.ndarray:
    """`reference_integer_ops::DepthwiseConvPerChannel`. w: (1, KH, KW, Cin * depth_multiplier)."""
    acc = depthwise_conv2d_acc(x, w, bias, input_offset=input_offset, depth_multiplier=depth_multiplier, stride=stride,
                               padding=padding, dilation=dilation, out_hw=out_hw)
    return requantize(acc, multiplier, shift, output_offset, act_min, act_max)


def fully_connected_acc(x, w, bias, *, input_offset: int, filter_offset: int = 0) -> np.ndarray:
    """The int32 accumulators (bias included) of FULLY_CONNECTED, shape (batches, N)."""
    x = np.asarray(x, dtype=_I64)
    w = np.asarray(w, dtype=_I64)
    acc = (x.reshape(-1, w.shape[1]) + input_offset) @ (w + filter_offset).T
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=_I64)
    return acc


def fully_connected_s8(x, w, bias, *, input_offset: int, output_offset: int, multiplier, shift, filter_offset: int = 0,
                       act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """`reference_integer_ops::FullyConnected[PerChannel]`. x: (batches, K), w: (N, K)."""
    acc = fully_connected_acc(x, w, bias, input_offset=input_offset, filter_offset=filter_offset)
    return requantize(acc, multiplier, shift, output_offset, act_min, act_max)


def add_s8(a, b, p: AddParams) -> np.ndarray:
    """`reference_integer_ops::Add` (equal shapes or NumPy broadcasting)."""
    a = np.asarray(a, dtype=_I64)
    b = np.asarray(b, dtype=_I64)
    s1 = multiply_by_quantized_multiplier(_wrap32((a + p.input1_offset) << p.left_shift), p.input1_multiplier, p.input1_shift)
    s2 = multiply_by_quantized_multiplier(_wrap32((b + p.input2_offset) << p.left_shift), p.input2_multiplier, p.input2_shift)
    y = multiply_by_quantized_multiplier(_wrap32(s1 + s2), p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(y, p.act_min, p.act_max).astype(np.int8)


def mul_s8(a, b, p: MulParams) -> np.ndarray:
    """`reference_integer_ops::Mul` / `BroadcastMul6DSlow`."""
    a = np.asarray(a, dtype=_I64)
    b = np.asarray(b, dtype=_I64)
    y = multiply_by_quantized_multiplier((a + p.input1_offset) * (b + p.input2_offset), p.output_multiplier, p.output_shift)
    return np.clip(y + p.output_offset, p.act_min, p.act_max).astype(np.int8)


def _pool_windows(x, filter_hw, stride, padding, out_hw):
    fh, fw = filter_hw
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    n, h, w, c = x.shape
    oh, ow = out_hw
    for oy in range(oh):
        y0 = oy * sh - ph
        ys, ye = max(0, -y0), min(fh, h - y0)
        for ox in range(ow):
            x0 = ox * sw - pw
            xs, xe = max(0, -x0), min(fw, w - x0)
            yield oy, ox, x[:, y0 + ys:y0 + ye, x0 + xs:x0 + xe, :]


def avgpool_s8(x, *, filter_hw, stride, padding, out_hw, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """`reference_integer_ops::AveragePool`: divide by the in-image count, ties away from zero."""
    x = np.asarray(x, dtype=_I64)
    out = np.empty((x.shape[0], out_hw[0], out_hw[1], x.shape[3]), dtype=np.int8)
    for oy, ox, win in _pool_windows(x, filter_hw, stride, padding, out_hw):
        cnt = win.shape[1] * win.shape[2]
        if cnt == 0:
            raise ValueError("average pool window entirely outside the input")
        acc = win.sum(axis=(1, 2))
        q = np.where(acc > 0, (acc + cnt // 2) // cnt, -((-acc + cnt // 2) // cnt))
        out[:, oy, ox, :] = np.clip(q, act_min, act_max)
    return out


def maxpool_s8(x, *, filter_hw, stride, padding, out_hw, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """`reference_integer_ops::MaxPool`."""
    x = np.asarray(x, dtype=_I64)
    out = np.empty((x.shape[0], out_hw[0], out_hw[1], x.shape[3]), dtype=np.int8)
    for oy, ox, win in _pool_windows(x, filter_hw, stride, padding, out_hw):
        m = win.max(axis=(1, 2)) if win.size else np.full((x.shape[0], x.shape[3]), -128)
        out[:, oy, ox, :] = np.clip(m, act_min, act_max)
    return out


# gemmlowp fixed-point helpers (scalars broadcast; raw int32 values held in int64)


def _fp_mul(a, b):
    return saturating_rounding_doubling_high_mul(a, b)


def _srmpot(x, exponent: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32."""
    x = np.asarray(x, dtype=_I64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    r = _wrap32(x << exponent)
    r = np.where(x > threshold, INT32_MAX, r)
    return np.where(x < -threshold, INT32_MIN, r)


def _rounding_half_sum(a, b):
    s = np.asarray(a, dtype=_I64) + np.asarray(b, dtype=_I64)
    t = s + np.where(s >= 0, 1, -1)
    return np.where(t >= 0, t // 2, -((-t) // 2))  # C++ truncating division


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = _wrap32(a + (1 << 28))
    x2 = _fp_mul(x, x)
    x3 = _fp_mul(x2, x)
    x4 = _fp_mul(x2, x2)
    x4_over_4 = _srmpot(x4, -2)
    t = _srmpot(_wrap32(_fp_mul(_wrap32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return _wrap32(constant_term + _fp_mul(constant_term, _wrap32(x + t)))


def _exp_on_negative_values(a, integer_bits: int):
    """gemmlowp exp_on_negative_values for FixedPoint<int32, integer_bits>; returns Q0.31 raw."""
    a = np.asarray(a, dtype=_I64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _wrap32((a & mask) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(_srmpot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                           (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            shift = fractional_bits + exponent
            result = np.where((remainder & (1 << shift)) != 0, _fp_mul(result, mult), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x_for_x_in_0_1(a):
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = _wrap32(1515870810 + _fp_mul(half_denominator, -1010580540))
    one_f2 = 1 << 29
    for _ in range(3):
        hdx = _fp_mul(half_denominator, x)
        one_minus = _wrap32(one_f2 - hdx)
        x = _wrap32(x + _srmpot(_fp_mul(x, one_minus), 2))
    return _srmpot(x, 1)  # Rescale<0>(ExactMulByPot<-1>(x)): F2 -> F0 is << 2, the /2 makes it << 1


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = _wrap32(1515870810 + _fp_mul(half_denominator, -1010580540))
    one_f2 = 1 << 29
    for _ in range(3):
        hdx = _fp_mul(half_denominator, x)
        one_minus = _wrap32(one_f2 - hdx)
        x = _wrap32(x + _srmpot(_fp_mul(x, one_minus), 2))
    return _srmpot(_wrap32(x - one_f2), 2)


def _logistic_fp(a, integer_bits: int):
    a = np.asarray(a, dtype=_I64)
    pos = a > 0
    abs_input = np.where(pos, a, _wrap32(-a))
    r_pos = _one_over_one_plus_x_for_x_in_0_1(_exp_on_negative_values(_wrap32(-abs_input), integer_bits))
    r_neg = _wrap32(INT32_MAX - r_pos)
    return np.where(a == 0, 1 << 30, np.where(pos, r_pos, r_neg))


def _tanh_fp(a, integer_bits: int):
    a = np.asarray(a, dtype=_I64)
    neg = a < 0
    n = np.where(neg, a, _wrap32(-a))
    # neg_tanh_on_negative_values: ExactMulByPot<1> reinterprets as integer_bits + 1.
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(_exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(neg, _wrap32(-t), t))


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite `GetReciprocal`: (shifted_scale raw Q0.31, num_bits_over_unit)."""
    x = np.asarray(x, dtype=_I64)
    ux = x & 0xFFFFFFFF
    clz = np.array([32 - int(v).bit_length() for v in np.ravel(ux)], dtype=_I64).reshape(ux.shape)
    num_bits_over_unit = x_integer_digits - clz
    shifted_sum_minus_one = _wrap32(((ux << clz) & 0xFFFFFFFF) - (1 << 31))
    return _one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def softmax_s8(x, p: SoftmaxParams) -> np.ndarray:
    """`reference_ops::Softmax` int8 -> int8 (output scale 1/256, zero point -128), over the last axis."""
    x = np.asarray(x, dtype=_I64)
    shape = x.shape
    rows = x.reshape(-1, shape[-1])
    out = np.empty(rows.shape, dtype=np.int8)
    for i, row in enumerate(rows):
        diff = row - row.max()
        valid = diff >= p.diff_min
        rescaled = _wrap32(diff << p.input_left_shift)  # MultiplyByQuantizedMultiplierGreaterThanOne
        rescaled = saturating_rounding_doubling_high_mul(rescaled, p.input_multiplier)
        e = _exp_on_negative_values(rescaled, 5)
        sum_of_exps = int(np.sum(np.where(valid, _srmpot(e, -12), 0)))
        sum_of_exps = int(_wrap32(sum_of_exps))
        shifted_scale, nbou = get_reciprocal(sum_of_exps, 12)
        exponent = int(nbou) + 31 - 8
        if not 0 <= exponent <= 31:
            raise ValueError("softmax exponent out of range")
        unsat = rounding_divide_by_pot(_fp_mul(int(shifted_scale), e), exponent)
        y = np.clip(unsat - 128, -128, 127)
        out[i] = np.where(valid, y, -128)
    return out.reshape(shape)


SOFTMAX_LUT_EXP_BITS = 20  # the table holds round(exp(d * beta * scale) * 2^20)
SOFTMAX_LUT_RECIP_BITS = 16  # the output reciprocal round(2^16 / out_scale)


def softmax_lut_params(in_scale: float, beta: float, out_scale: float) -> tuple[np.ndarray, int]:
    """Softmax between int8 tensors at any output scale (ONNX QDQ models):
    (table of 256 int32 indexed by x - max + 255, output reciprocal). exp in float64
    at compile time; the kernel stays integer."""
    d = np.arange(-255, 1, dtype=np.float64)
    table = np.rint(np.exp(d * float(beta) * float(np.float32(in_scale))) * (1 << SOFTMAX_LUT_EXP_BITS)).astype(np.int64)
    recip = int(round((1 << SOFTMAX_LUT_RECIP_BITS) / float(np.float32(out_scale))))
    if not 0 < recip < (1 << 31):
        raise ValueError(f"softmax output scale {out_scale} out of range for the table kernel")
    return table.astype(np.int32), recip


def softmax_lut_s8(x, table, recip: int, output_zp: int) -> np.ndarray:
    """`edgec_softmax_lut_s8` over the last axis: y = e / sum(e) / out_scale rounded
    half to even (one rounding, onnxruntime's), + zero point, clamped to int8.
    Rows of at most 2047 elements (the int32 sum of Q20 exponentials)."""
    x = np.asarray(x, dtype=_I64)
    shape = x.shape
    rows = x.reshape(-1, shape[-1])
    t = np.asarray(table, dtype=_I64)
    e = t[rows - rows.max(axis=1, keepdims=True) + 255]
    num = e * int(recip)
    den = e.sum(axis=1, keepdims=True) << SOFTMAX_LUT_RECIP_BITS
    q, r = np.divmod(num, den)
    q = q + ((2 * r > den) | ((2 * r == den) & (q % 2 == 1)))
    return np.clip(q + output_zp, -128, 127).astype(np.int8).reshape(shape)


def _sigmoid_like_s8(x, p: SigmoidParams, fn, out_shift: int, out_offset: int) -> np.ndarray:
    x = np.asarray(x, dtype=_I64)
    inp = x - p.input_zero_point
    q4 = multiply_by_quantized_multiplier(inp, p.input_multiplier, p.input_left_shift)
    y = np.clip(rounding_divide_by_pot(fn(q4, 4), out_shift) + out_offset, -128, 127)
    y = np.where(inp <= -p.input_range_radius, -128, y)
    y = np.where(inp >= p.input_range_radius, 127, y)
    return y.astype(np.int8)


def logistic_s8(x, p: SigmoidParams) -> np.ndarray:
    """`reference_integer_ops::Logistic` int8 (output scale 1/256, zero point -128)."""
    return _sigmoid_like_s8(x, p, _logistic_fp, 31 - 8, -128)


def tanh_s8(x, p: SigmoidParams) -> np.ndarray:
    """`reference_integer_ops::Tanh` int8 (output scale 1/128, zero point 0)."""
    return _sigmoid_like_s8(x, p, _tanh_fp, 31 - 7, 0)


def logistic_lut_s8(p: SigmoidParams) -> np.ndarray:
    """256-entry table (indexed by input + 128) equal to `logistic_s8`, for `edgec_lut_s8`."""
    return logistic_s8(np.arange(-128, 128), p)


def tanh_lut_s8(p: SigmoidParams) -> np.ndarray:
    """256-entry table (indexed by input + 128) equal to `tanh_s8`, for `edgec_lut_s8`."""
    return tanh_s8(np.arange(-128, 128), p)


def float_function_lut_s8(fn, in_scale: float, in_zp: int, out_scale: float, out_zp: int, act_min: int = -128,
                          act_max: int = 127) -> np.ndarray:
    """256-entry table (indexed by input + 128) of an elementwise float function
    between int8 tensors of any scales, as onnxruntime's QLinearSigmoid / QDQ
    Sigmoid computes it: dequantize in float32, apply fn (here in float64, rounded
    to float32), quantize with round-half-to-even, clamp."""
    x = np.arange(-128, 128, dtype=np.int32)
    v = (x - np.int32(in_zp)).astype(np.float32) * np.float32(in_scale)
    y = np.asarray(fn(v.astype(np.float64)), np.float64).astype(np.float32)
    q = np.rint(y / np.float32(out_scale)).astype(np.float64) + out_zp
    return np.clip(q, act_min, act_max).astype(np.int8)


def pad_s8(x, pads: Sequence[tuple[int, int]], pad_value: int) -> np.ndarray:
    """PAD / PADV2: constant padding (TFLM pads int8 with the output zero point by default)."""
    return np.pad(np.asarray(x, dtype=np.int8), [tuple(map(int, p)) for p in pads], constant_values=np.int8(pad_value))


def concat_s8(xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """CONCATENATION int8: TFLM requires equal scales and zero points, so a plain copy."""
    return np.concatenate([np.asarray(x, dtype=np.int8) for x in xs], axis=axis)


# --- scratch sizes of the C kernels (mirror the *_get_buffer_size functions) -------------


def convolve_s8_buffer_size(kernel_h: int, kernel_w: int, kernel_c: int, *, dsp: bool) -> int:
    """Bytes of scratch `edgec_convolve_s8` needs: on DSP builds two interleaved
    int16 im2col columns plus one int8 staging column, 5 * align4(kh*kw*kc)."""
    if not dsp:
        return 0
    k = kernel_h * kernel_w * kernel_c
    return 5 * ((k + 3) & ~3)


def convolve_1x1_s8_buffer_size(input_c: int, *, dsp: bool) -> int:
    """Bytes of scratch `edgec_convolve_1x1_s8` needs: two int16 columns, 4 * align4(c)."""
    return 4 * ((input_c + 3) & ~3) if dsp else 0
