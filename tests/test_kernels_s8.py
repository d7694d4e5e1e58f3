"""The int8 kernel library (runtime_c/kernels) against TFLite Micro, LiteRT and edgec.qmath.

Golden data:
  (a) every layer of the MLPerf Tiny int8 models, run on the layer's real input:
      vs TFLite Micro (0 differing bytes), and vs LiteRT's default int8 kernels
      (0 differing bytes except on exact rounding ties, where LiteRT's optimized
      kernels round half up and TFLite Micro half away from zero; TFLM wins);
  (b) whole models chained through the kernels vs the TFLite Micro interpreter;
  (c) randomized small cases per kernel vs edgec.qmath's NumPy reference;
  and tiny single-operator models run by TFLite Micro for the ops the MLPerf
  models do not use (LOGISTIC, TANH, MUL, MAX_POOL_2D, PAD, CONCATENATION, ...).

Every check runs twice: the portable C path and the DSP path (ACLE intrinsics
emulated in C on the host, the C twins of its Arm assembly routines); they must
give the same bytes. The assembly itself runs on the emulated Cortex-M7 in
bench/kernels.py, which checks every MLPerf layer against TFLite Micro. The
library is also cross-compiled for Cortex-M0+/M4/M7 (code size and worst-case
stack per kernel call).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import kernel_harness as H
from edgec import qmath as Q

LIB_VARIANTS = ("portable", "dsp")


@pytest.fixture(scope="session")
def kernel_build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("edgec_kernels")


@pytest.fixture(scope="session")
def libs(kernel_build_dir) -> dict[str, H.KernelLib]:
    return {
        "portable": H.build_kernel_library(kernel_build_dir, emulate_dsp=False),
        "dsp": H.build_kernel_library(kernel_build_dir, emulate_dsp=True),
    }


def _ndiff(a, b) -> int:
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    assert a.size == b.size, (a.shape, b.shape)
    return int(np.count_nonzero(a != b))


# --- fixed-point primitives -------------------------------------------------------------------


def test_quantize_multiplier_matches_tflite():
    assert Q.quantize_multiplier(0.5) == (1 << 30, 0)
    assert Q.quantize_multiplier(1.0) == (1 << 30, 1)
    assert Q.quantize_multiplier(0.0) == (0, 0)
    assert Q.quantize_multiplier(2.0 ** -40) == (0, 0)  # flushed, as TFLite does below 2^-31
    # significand rounding up to 2^31 is renormalised
    assert Q.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    m, s = Q.quantize_multiplier(0.0003)
    assert (1 << 30) <= m < (1 << 31) and abs(m * 2.0 ** (s - 31) - 0.0003) < 1e-12
    assert Q.tflite_round(2.5) == 3 and Q.tflite_round(-2.5) == -3


def test_rounding_is_half_away_from_zero_twice():
    # x * 0.25 as m = 2^30 (0.5), shift = -1: the high multiply rounds x/2 first, then
    # RoundingDivideByPOT rounds again, so 5 * 0.25 = 1.25 -> 2.5 -> 3 -> 1.5 -> 2, while
    # -5 * 0.25 -> -2.5 -> -2 -> -1 (gemmlowp's nudge rounds negative ties toward zero).
    x = np.array([-6, -5, -3, -2, 2, 3, 5, 6])
    y = Q.multiply_by_quantized_multiplier(x, 1 << 30, -1)
    assert y.tolist() == [-2, -1, -1, -1, 1, 1, 2, 2]
    # the single-rounding build would give round(x / 4), ties up
    assert Q.multiply_by_quantized_multiplier(x, 1 << 30, -1, single_rounding=True).tolist() == [-1, -1, -1, 0, 1, 1, 1, 2]
    assert Q.saturating_rounding_doubling_high_mul(Q.INT32_MIN, Q.INT32_MIN) == Q.INT32_MAX
    assert Q.rounding_divide_by_pot(np.array([-3, -2, -1, 1, 2, 3]), 1).tolist() == [-2, -1, -1, 1, 1, 2]


def test_buffer_sizes_match_qmath(libs):
    for kh, kw, c in [(3, 3, 3), (10, 4, 1), (1, 1, 64), (3, 3, 17)]:
        inp, flt = (1, 8, 8, c), (4, kh, kw, c)
        assert libs["portable"].conv_buffer_size(inp, flt) == Q.convolve_s8_buffer_size(kh, kw, c, dsp=False)
        assert libs["dsp"].conv_buffer_size(inp, flt) == Q.convolve_s8_buffer_size(kh, kw, c, dsp=True)
        assert libs["dsp"].conv_buffer_size(inp, (4, 1, 1, c), True) == Q.convolve_1x1_s8_buffer_size(c, dsp=True)
        assert libs["portable"].conv_buffer_size(inp, (4, 1, 1, c), True) == 0


# --- (a) + (b): MLPerf Tiny models ------------------------------------------------------------

needs_models = pytest.mark.skipif(not H.MLPERF_DIR.is_dir(), reason=f"MLPerf Tiny models not found in {H.MLPERF_DIR}")


def _model_path(name: str) -> Path:
    return H.MLPERF_DIR / f"{name}.tflite"


def _nonconst_inputs(model, layer, values):
    return [values[i] for i in layer.inputs if i >= 0 and model.tensors[i].data is None]


@needs_models
@pytest.mark.parametrize("name", H.MLPERF_MODELS)
def test_mlperf_layers_vs_tflm(libs, name):
    """Each layer on TFLite Micro's own input for it: 0 differing bytes."""
    pytest.importorskip("tflite")
    pytest.importorskip("tflite_micro")
    path = _model_path(name)
    model = H.TfliteModel(path)
    report = []
    for seed in (1, 2):
        x = H.random_input(model, seed)
        tm, _ = H.tflm_layer_io(path, x, range(len(model.tensors)))
        for layer in model.layers:
            ref = tm[layer.outputs[0]]
            for variant, lib in libs.items():
                # seed 1: pruned pointwise layers through the pruned kernel (as compiled); seed 2: the plain one
                y = H.run_layer(lib, model, layer, _nonconst_inputs(model, layer, tm), prune=seed == 1)
                d = _ndiff(y, ref)
                report.append((seed, layer.index, layer.op, variant, d))
    bad = [r for r in report if r[-1]]
    print(f"\n{name}: {len(model.layers)} layers x 2 inputs x 2 paths vs TFLM, differing bytes total "
          f"{sum(r[-1] for r in report)}")
    assert not bad, bad


def _layer_acc_and_quant(model, layer, x):
    """qmath accumulators and (multipliers, shifts) of a conv/depthwise/FC layer on input x."""
    T = model.tensors
    o = layer.options
    in_t, w_t, out_t = T[layer.inputs[0]], T[layer.inputs[1]], T[layer.outputs[0]]
    w = w_t.data
    bias = T[layer.inputs[2]].data if len(layer.inputs) > 2 and layer.inputs[2] >= 0 else None
    if layer.op == "FULLY_CONNECTED":
        acc = Q.fully_connected_acc(x.reshape(-1, w.shape[1]), w, bias, input_offset=-in_t.zero_point)
        m, s, _ = Q.fc_quant_params(in_t.scale, w_t.scales, out_t.scale)
        return acc, m, s
    x = x.reshape(in_t.shape)
    pad = H._PADDING[o.Padding()]
    oh, ph, _ = Q.compute_padding(pad, x.shape[1], w.shape[1], o.StrideH(), o.DilationHFactor())
    ow, pw, _ = Q.compute_padding(pad, x.shape[2], w.shape[2], o.StrideW(), o.DilationWFactor())
    kw = dict(input_offset=-in_t.zero_point, stride=(o.StrideH(), o.StrideW()), padding=(ph, pw),
              dilation=(o.DilationHFactor(), o.DilationWFactor()), out_hw=(oh, ow))
    if layer.op == "CONV_2D":
        acc = Q.conv2d_acc(x, w, bias, **kw)
        cout = w.shape[0]
    else:
        cout = w.shape[3]
        acc = Q.depthwise_conv2d_acc(x, w, bias, depth_multiplier=cout // x.shape[3], **kw)
    m, s = Q.conv_quant_params(in_t.scale, w_t.scales, out_t.scale, cout)
    return acc, m, s


@needs_models
@pytest.mark.parametrize("name", H.MLPERF_MODELS)
def test_mlperf_layers_vs_litert(libs, name):
    """Each layer on LiteRT's input for it vs LiteRT's default int8 kernels.

    Where they differ, LiteRT must be the one that rounded an exact tie half up
    (its optimized kernels' rounding) while the kernel rounded it as TFLite Micro
    does; everything else must be identical.
    """
    pytest.importorskip("tflite")
    pytest.importorskip("ai_edge_litert")
    path = _model_path(name)
    model = H.TfliteModel(path)
    x = H.random_input(model, 1)
    lr = H.litert_layer_io(path, x)
    lines = []
    for layer in model.layers:
        ref = lr[layer.outputs[0]]
        ins = _nonconst_inputs(model, layer, lr)
        ys = {v: H.run_layer(lib, model, layer, ins) for v, lib in libs.items()}
        assert _ndiff(ys["portable"], ys["dsp"]) == 0
        y = ys["portable"]
        d = _ndiff(y, ref)
        if d:
            assert layer.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"), (layer.index, layer.op, d)
            out_t = model.tensors[layer.outputs[0]]
            lo, hi = H._act_range(layer.options.FusedActivationFunction(), out_t)
            acc, m, s = _layer_acc_and_quant(model, layer, ins[0])
            tflm_like = Q.requantize(acc, m, s, out_t.zero_point, lo, hi)
            half_up = Q.requantize(acc, m, s, out_t.zero_point, lo, hi, rounding="half_up")
            assert _ndiff(y, tflm_like) == 0, "kernel != qmath (TFLite rounding)"
            assert _ndiff(ref, half_up) == 0, "LiteRT difference not explained by half-up rounding"
        lines.append(f"{layer.index}:{layer.op}:{d}")
    print(f"\n{name} vs LiteRT (layer:op:differing bytes, all on rounding ties): " + " ".join(lines))


@needs_models
@pytest.mark.parametrize("name", H.MLPERF_MODELS)
def test_mlperf_whole_model_vs_tflm(libs, name):
    """The model chained through the kernels equals the TFLite Micro interpreter's output."""
    pytest.importorskip("tflite")
    pytest.importorskip("tflite_micro")
    path = _model_path(name)
    model = H.TfliteModel(path)
    for seed in (10, 11, 12):
        x = H.random_input(model, seed)
        ref = H.tflm_output(path, x)
        for variant, lib in libs.items():
            y = H.run_model(lib, model, x)
            assert _ndiff(y, ref) == 0, (name, seed, variant)


# --- (c) randomized cases vs edgec.qmath --------------------------------------------------------


def _rand_quant(rng, n, per_channel=True):
    """Realistic multipliers: effective scales around 2^-12 .. 2^-5."""
    reals = 2.0 ** rng.uniform(-12, -5, size=n if per_channel else 1)
    pairs = [Q.quantize_multiplier(r) for r in reals]
    m = np.array([p[0] for p in pairs], dtype=np.int32)
    s = np.array([p[1] for p in pairs], dtype=np.int32)
    return m, s


def _i8(rng, shape):
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def _act(rng):
    lo = int(rng.integers(-128, 0)) if rng.random() < 0.5 else -128
    hi = int(rng.integers(0, 128)) if rng.random() < 0.5 else 127
    return lo, hi


@pytest.mark.parametrize("seed", range(40))
def test_random_convolve(libs, seed):
    rng = np.random.default_rng(seed)
    groups = 1 if seed % 5 else int(rng.integers(2, 4))
    kc = int(rng.integers(1, 12))
    cin = kc * groups
    cout = groups * int(rng.integers(1, 7))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    dh, dw = (1, 1) if seed % 3 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(kh, 10)), int(rng.integers(kw, 10))
    pad = "SAME" if seed % 2 else "VALID"
    oh, ph, _ = Q.compute_padding(pad, h, kh, sh, dh)
    ow, pw, _ = Q.compute_padding(pad, w, kw, sw, dw)
    if oh <= 0 or ow <= 0:
        pytest.skip("empty output")
    x = _i8(rng, (n, h, w, cin))
    wt = _i8(rng, (cout, kh, kw, kc))
    bias = rng.integers(-5000, 5000, size=cout).astype(np.int32) if seed % 4 else None
    per_channel = seed % 7 != 0
    m, s = _rand_quant(rng, cout, per_channel)
    lo, hi = _act(rng)
    args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)),
                stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), out_hw=(oh, ow), act_min=lo, act_max=hi)
    ref = Q.conv2d_s8(x, wt, bias, multiplier=m if per_channel else m[0], shift=s if per_channel else s[0], **args)
    for v, lib in libs.items():
        y = lib.convolve(x, wt, bias, H.Quant(m, s, per_channel), **args)
        assert _ndiff(y, ref) == 0, v


@pytest.mark.parametrize("seed", range(20))
def test_random_convolve_1x1(libs, seed):
    rng = np.random.default_rng(100 + seed)
    cin, cout = int(rng.integers(1, 40)), int(rng.integers(1, 20))
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    oh, ow = (h - 1) // sh + 1, (w - 1) // sw + 1
    x, wt = _i8(rng, (n, h, w, cin)), _i8(rng, (cout, 1, 1, cin))
    bias = rng.integers(-5000, 5000, size=cout).astype(np.int32)
    m, s = _rand_quant(rng, cout)
    args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)),
                stride=(sh, sw), padding=(0, 0), dilation=(1, 1), out_hw=(oh, ow))
    ref = Q.conv2d_s8(x, wt, bias, multiplier=m, shift=s, **args)
    for v, lib in libs.items():
        assert _ndiff(lib.convolve(x, wt, bias, H.Quant(m, s, True), one_by_one=True, **args), ref) == 0, v
        assert _ndiff(lib.convolve(x, wt, bias, H.Quant(m, s, True), **args), ref) == 0, v


@pytest.mark.parametrize("seed", range(12))
def test_random_convolve_1x1_pruned(libs, seed):
    """Pruned pointwise layers (all-zero filters, extreme quantisation on them as in
    the MLPerf VWW model) through edgec_convolve_1x1_pruned_s8 = the full layer."""
    rng = np.random.default_rng(150 + seed)
    cin, cout = 4 * int(rng.integers(1, 12)) + (seed % 3 == 2), int(rng.integers(2, 24))
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 7)), int(rng.integers(1, 7))
    x, wt = _i8(rng, (n, h, w, cin)), _i8(rng, (cout, 1, 1, cin))
    bias = rng.integers(-5000, 5000, size=cout).astype(np.int32)
    m, s = _rand_quant(rng, cout)
    dead = rng.random(cout) < (0.5 if seed % 4 else 1.0)
    wt[dead] = 0
    if seed % 2:
        m[dead], s[dead], bias[dead] = 0, -31, 1 << 30
    lo, hi = (-128, 127) if seed % 5 else (-100, 90)
    args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)))
    ref = Q.conv2d_s8(x, wt, bias, multiplier=m, shift=s, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                      out_hw=(h, w), act_min=lo, act_max=hi, **args)
    for v, lib in libs.items():
        y = lib.convolve_1x1_pruned(x, wt, bias, H.Quant(m, s, True), act_min=lo, act_max=hi, **args)
        assert _ndiff(y, ref) == 0, v


def test_convolve_1x1_refuses_padding(libs):
    x, wt = np.zeros((1, 4, 4, 3), np.int8), np.zeros((2, 1, 1, 3), np.int8)
    with pytest.raises(H.KernelError):
        libs["portable"].convolve(x, wt, None, H.Quant([1 << 30], [0], False), input_offset=0, output_offset=0,
                                  padding=(1, 1), out_hw=(6, 6), one_by_one=True)


@pytest.mark.parametrize("seed", range(40))
def test_random_depthwise(libs, seed):
    rng = np.random.default_rng(200 + seed)
    dm = 1 if seed % 3 else int(rng.integers(2, 4))
    cin = int(rng.integers(1, 14))
    kh, kw = (3, 3) if seed % 2 else (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    dh, dw = (1, 1) if seed % 4 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(kh, 12)), int(rng.integers(kw, 12))
    pad = "SAME" if seed % 5 else "VALID"
    oh, ph, _ = Q.compute_padding(pad, h, kh, sh, dh)
    ow, pw, _ = Q.compute_padding(pad, w, kw, sw, dw)
    if oh <= 0 or ow <= 0:
        pytest.skip("empty output")
    cout = cin * dm
    x, wt = _i8(rng, (n, h, w, cin)), _i8(rng, (1, kh, kw, cout))
    bias = rng.integers(-5000, 5000, size=cout).astype(np.int32) if seed % 6 else None
    per_channel = seed % 7 != 0
    m, s = _rand_quant(rng, cout, per_channel)
    lo, hi = _act(rng)
    args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)),
                depth_multiplier=dm, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), out_hw=(oh, ow),
                act_min=lo, act_max=hi)
    ref = Q.depthwise_conv2d_s8(x, wt, bias, multiplier=m if per_channel else m[0],
                                shift=s if per_channel else s[0], **args)
    for v, lib in libs.items():
        assert _ndiff(lib.depthwise_conv(x, wt, bias, H.Quant(m, s, per_channel), **args), ref) == 0, v


@pytest.mark.parametrize("seed", range(30))
def test_random_fully_connected(libs, seed):
    rng = np.random.default_rng(300 + seed)
    batches, k, n = int(rng.integers(1, 4)), int(rng.integers(1, 70)), int(rng.integers(1, 20))
    x, wt = _i8(rng, (batches, k)), _i8(rng, (n, k))
    bias = rng.integers(-5000, 5000, size=n).astype(np.int32) if seed % 3 else None
    per_channel = seed % 2 == 0
    m, s = _rand_quant(rng, n, per_channel)
    fo = 0 if seed % 5 else int(rng.integers(-10, 10))
    lo, hi = _act(rng)
    args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)),
                filter_offset=fo, act_min=lo, act_max=hi)
    ref = Q.fully_connected_s8(x, wt, bias, multiplier=m if per_channel else m[0],
                               shift=s if per_channel else s[0], **args)
    for v, lib in libs.items():
        assert _ndiff(lib.fully_connected(x, wt, bias, H.Quant(m, s, per_channel), **args), ref) == 0, v


def _rand_scale(rng):
    return float(np.float32(2.0 ** rng.uniform(-9, -2)))


@pytest.mark.parametrize("seed", range(30))
def test_random_add_mul(libs, seed):
    rng = np.random.default_rng(400 + seed)
    size = int(rng.integers(1, 300))
    a = _i8(rng, (size,))
    b = _i8(rng, (size,)) if seed % 3 == 0 else (_i8(rng, (1,)) if seed % 3 == 1 else _i8(rng, (size,)))
    if seed % 6 == 2:
        a, b = b[:1], a  # scalar first
    s1, s2, so = _rand_scale(rng), _rand_scale(rng), _rand_scale(rng)
    z1, z2, zo = (int(v) for v in rng.integers(-128, 128, size=3))
    act = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"][seed % 4]
    pa = Q.add_params(s1, z1, s2, z2, so, zo, act)
    pm = Q.mul_params(s1, z1, s2, z2, so, zo, act)
    for v, lib in libs.items():
        assert _ndiff(lib.add(a, b, pa), Q.add_s8(a, b, pa)) == 0, v
        assert _ndiff(lib.mul(a, b, pm), Q.mul_s8(a, b, pm)) == 0, v


@pytest.mark.parametrize("seed", range(20))
def test_random_pooling(libs, seed):
    rng = np.random.default_rng(500 + seed)
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    n, h, w, c = int(rng.integers(1, 3)), int(rng.integers(fh, 10)), int(rng.integers(fw, 10)), int(rng.integers(1, 9))
    pad = "SAME" if seed % 2 else "VALID"
    oh, ph, _ = Q.compute_padding(pad, h, fh, sh)
    ow, pw, _ = Q.compute_padding(pad, w, fw, sw)
    x = _i8(rng, (n, h, w, c))
    lo, hi = _act(rng)
    args = dict(filter_hw=(fh, fw), stride=(sh, sw), padding=(ph, pw), out_hw=(oh, ow), act_min=lo, act_max=hi)
    for v, lib in libs.items():
        assert _ndiff(lib.pool("avg", x, **args), Q.avgpool_s8(x, **args)) == 0, v
        assert _ndiff(lib.pool("max", x, **args), Q.maxpool_s8(x, **args)) == 0, v


@pytest.mark.parametrize("seed", range(30))
def test_random_softmax(libs, seed):
    rng = np.random.default_rng(600 + seed)
    rows, depth = int(rng.integers(1, 5)), int(rng.integers(1, 300))
    spread = int(rng.integers(1, 256))
    x = np.clip(rng.integers(-128, -128 + spread, size=(rows, depth)) + rng.integers(0, 256 - spread), -128,
                127).astype(np.int8)
    p = Q.softmax_params(float(np.float32(2.0 ** rng.uniform(-7, 0))), float(np.float32(rng.choice([1.0, 0.5, 2.0]))))
    ref = Q.softmax_s8(x, p)
    for v, lib in libs.items():
        assert _ndiff(lib.softmax(x, p), ref) == 0, v


@pytest.mark.parametrize("seed", range(30))
def test_random_logistic_tanh_and_luts(libs, seed):
    rng = np.random.default_rng(700 + seed)
    x = np.arange(-128, 128, dtype=np.int8)
    scale = float(np.float32(2.0 ** rng.uniform(-8, 1)))
    zp = int(rng.integers(-128, 128))
    for kind, params, ref_fn, lut_fn in (("logistic", Q.logistic_params, Q.logistic_s8, Q.logistic_lut_s8),
                                         ("tanh", Q.tanh_params, Q.tanh_s8, Q.tanh_lut_s8)):
        p = params(scale, zp)
        ref = ref_fn(x, p)
        assert np.array_equal(lut_fn(p), ref)
        for v, lib in libs.items():
            assert _ndiff(lib.sigmoid_like(kind, x, p), ref) == 0, (kind, v)
            assert _ndiff(lib.lut(x, lut_fn(p)), ref) == 0, (kind, v)


@pytest.mark.parametrize("seed", range(15))
def test_random_pad_concat(libs, seed):
    rng = np.random.default_rng(800 + seed)
    rank = int(rng.integers(1, 6))
    shape = tuple(int(v) for v in rng.integers(1, 5, size=rank))
    x = _i8(rng, shape)
    pads = rng.integers(0, 3, size=(rank, 2))
    value = int(rng.integers(-128, 128))
    axis = int(rng.integers(0, rank))
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        s = list(shape)
        s[axis] = int(rng.integers(1, 4))
        parts.append(_i8(rng, s))
    for v, lib in libs.items():
        assert _ndiff(lib.pad(x, pads, value), Q.pad_s8(x, pads, value)) == 0, v
        assert _ndiff(lib.concat(parts, axis), Q.concat_s8(parts, axis)) == 0, v


# --- the DSP fast paths, case by case (host: the C twins of the Arm assembly; the
#     assembly itself runs on the emulated Cortex-M7 in bench/kernels.py, which
#     checks every MLPerf layer's bytes against TFLite Micro) -----------------------------


def _conv_case(rng, n, h, w, cin, cout, kh, kw, stride, pad, *, dead=(), shift_range=(-12, -5)):
    x = _i8(rng, (n, h, w, cin))
    wt = _i8(rng, (cout, kh, kw, cin))
    bias = rng.integers(-20000, 20000, size=cout).astype(np.int32)
    reals = 2.0 ** rng.uniform(*shift_range, size=cout)
    m = np.array([Q.quantize_multiplier(r)[0] for r in reals], np.int32)
    s = np.array([Q.quantize_multiplier(r)[1] for r in reals], np.int32)
    for c in dead:  # pruned channel as TFLite writes it: zero weights, huge bias, extreme shift
        wt[c] = 0
        bias[c] = 1 << 30
        m[c], s[c] = (0, 0) if c % 2 else (1 << 30, -31)
    oh, ph, _ = Q.compute_padding(pad, h, kh, stride)
    ow, pw, _ = Q.compute_padding(pad, w, kw, stride)
    args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)),
                stride=(stride, stride), padding=(ph, pw), out_hw=(oh, ow))
    return x, wt, bias, m, s, args


@pytest.mark.parametrize("case", [
    # (n, h, w, cin, cout, kh, kw, stride, pad): interiors of >= 64 pixels take the weight-stationary path
    (1, 14, 13, 16, 6, 3, 3, 1, "SAME"),     # odd interior width, even channels
    (2, 12, 12, 8, 4, 3, 3, 2, "SAME"),      # stride 2, two batches
    (1, 12, 11, 3, 8, 3, 3, 1, "SAME"),      # 3-channel first layer: padded window rows
    (1, 17, 16, 3, 8, 3, 3, 2, "VALID"),     # padded rows, stride 2, windows near the last row
    (1, 13, 14, 4, 10, 3, 4, 1, "SAME"),     # 3x4 window
    (1, 12, 12, 16, 7, 3, 3, 1, "SAME"),     # odd channel count: im2col path
])
def test_convolve_weight_stationary(libs, case):
    rng = np.random.default_rng(sum(case[:8]))
    x, wt, bias, m, s, args = _conv_case(rng, *case)
    ref = Q.conv2d_s8(x, wt, bias, multiplier=m, shift=s, **args)
    for v, lib in libs.items():
        assert _ndiff(lib.convolve(x, wt, bias, H.Quant(m, s, True), **args), ref) == 0, v


@pytest.mark.parametrize("case", [
    # (n, h, w, cin, cout, stride, dead channels)
    (1, 5, 5, 16, 12, 1, ()),                # odd pixel count
    (2, 3, 4, 8, 9, 1, ()),                  # odd channel count, batches
    (1, 6, 6, 32, 16, 1, (1, 2, 5, 8, 9, 15)),  # pruned channels: skipped, re-paired, filled
    (1, 3, 3, 16, 8, 1, (0, 1, 2, 3, 4, 5, 6, 7)),  # all channels pruned
    (1, 8, 8, 16, 8, 2, ()),                 # strided (weight-stationary, one window row)
    (1, 7, 8, 16, 8, 2, (3,)),               # strided, odd output width, a pruned channel
])
def test_convolve_1x1_paths(libs, case):
    n, h, w, cin, cout, stride, dead = case
    rng = np.random.default_rng(cin * 31 + cout + len(dead))
    x, wt, bias, m, s, args = _conv_case(rng, n, h, w, cin, cout, 1, 1, stride, "VALID", dead=dead)
    if dead and cout > len(dead):
        wt[dead[0] ^ 1] = 0  # a pruned-looking channel that is not: fast parameters, zero weights
    ref = Q.conv2d_s8(x, wt, bias, multiplier=m, shift=s, **args)
    for v, lib in libs.items():
        for one in (True, False):
            assert _ndiff(lib.convolve(x, wt, bias, H.Quant(m, s, True), one_by_one=one, **args), ref) == 0, (v, one)


@pytest.mark.parametrize("case", [
    # (n, h, w, c, stride, pad, shifts): 3x3 depthwise, channel groups of 4 + a remainder
    (1, 6, 6, 16, 1, "SAME", (-9, -3)),
    (1, 3, 3, 8, 1, "SAME", (-9, -3)),          # every pixel on the border
    (1, 25, 5, 12, 1, "SAME", (-9, -3)),
    (1, 9, 8, 10, 2, "SAME", (-9, -3)),         # padding only bottom/right, channel remainder
    (1, 7, 7, 8, 2, "VALID", (-9, -3)),
    (1, 6, 5, 8, 1, "SAME", (-30, -25)),        # shifts beyond the fast requantisation: C path
    (2, 7, 5, 8, 1, "SAME", (-9, -3)),          # batches: pixel pairs must not straddle images
    (3, 4, 6, 12, 1, "SAME", (-9, -3)),
    (2, 9, 7, 8, 2, "SAME", (-9, -3)),
    (2, 5, 5, 4, 1, "VALID", (-9, -3)),
])
def test_depthwise_3x3_paths(libs, case):
    n, h, w, c, stride, pad, shifts = case
    rng = np.random.default_rng(n * 1000 + h * 100 + w * 10 + c)
    x, wt = _i8(rng, (n, h, w, c)), _i8(rng, (1, 3, 3, c))
    bias = rng.integers(-20000, 20000, size=c).astype(np.int32)
    reals = 2.0 ** rng.uniform(*shifts, size=c)
    m = np.array([Q.quantize_multiplier(r)[0] for r in reals], np.int32)
    s = np.array([Q.quantize_multiplier(r)[1] for r in reals], np.int32)
    oh, ph, _ = Q.compute_padding(pad, h, 3, stride)
    ow, pw, _ = Q.compute_padding(pad, w, 3, stride)
    args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)),
                depth_multiplier=1, stride=(stride, stride), padding=(ph, pw), out_hw=(oh, ow))
    ref = Q.depthwise_conv2d_s8(x, wt, bias, multiplier=m, shift=s, **args)
    for v, lib in libs.items():
        assert _ndiff(lib.depthwise_conv(x, wt, bias, H.Quant(m, s, True), **args), ref) == 0, v


@pytest.mark.parametrize("k,n", [(640, 128), (8, 13), (130, 6), (3, 5)])
def test_fully_connected_four_rows(libs, k, n):
    rng = np.random.default_rng(k + n)
    x, wt = _i8(rng, (1, k)), _i8(rng, (n, k))
    bias = rng.integers(-20000, 20000, size=n).astype(np.int32)
    m, s = _rand_quant(rng, 1, per_channel=False)
    args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)))
    ref = Q.fully_connected_s8(x, wt, bias, multiplier=m[0], shift=s[0], **args)
    for v, lib in libs.items():
        assert _ndiff(lib.fully_connected(x, wt, bias, H.Quant(m, s, False), **args), ref) == 0, v


def test_fast_requantisation_identity():
    """edgec_rq_fast (nn_support.h): SMMLAR(2 acc, m, k + sign) >> e equals TFLite's
    MultiplyByQuantizedMultiplier + output offset for every shift in [-23, -1],
    including exact ties of both roundings."""
    rng = np.random.default_rng(5)
    for e in range(1, 24):
        for m in (1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31)), 0, 12345):
            off = int(rng.integers(-128, 128))
            acc = np.concatenate([rng.integers(-(1 << 30) + 1, 1 << 30, 4000),
                                  (np.arange(-300, 300, dtype=np.int64) << e) + (1 << (e - 1)), np.arange(-3000, 3000)])
            acc = acc[np.abs(acc) < (1 << 30)]  # the domain edgec_rq_fast_ok guarantees
            x2 = acc.astype(np.int64) * 2
            k = (off << e) + (1 << (e - 1))
            t = (((k + (x2 >> 31)) << 32) + x2 * m + (1 << 31)) >> 32
            assert np.all(np.abs(t) < 2 ** 31)
            ref = Q.multiply_by_quantized_multiplier(acc, m, -e).astype(np.int64) + off
            assert np.array_equal(t >> e, ref), (e, m)


def test_dsp_path_equals_portable_on_random_data(libs):
    """Larger random layers through both builds: identical bytes (odd channel counts,
    odd pixel counts, per-tensor and per-channel, padding at every border)."""
    rng = np.random.default_rng(900)
    for cin, cout, k in [(3, 8, 3), (16, 17, 3), (7, 5, 5), (32, 33, 1), (64, 64, 3)]:
        x = _i8(rng, (1, 11, 9, cin))
        wt = _i8(rng, (cout, k, k, cin))
        b = rng.integers(-20000, 20000, size=cout).astype(np.int32)
        m, s = _rand_quant(rng, cout)
        oh, ph, _ = Q.compute_padding("SAME", 11, k, 1)
        ow, pw, _ = Q.compute_padding("SAME", 9, k, 1)
        args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)),
                    padding=(ph, pw), out_hw=(oh, ow))
        ys = [lib.convolve(x, wt, b, H.Quant(m, s, True), **args) for lib in libs.values()]
        assert _ndiff(ys[0], ys[1]) == 0
        wd = _i8(rng, (1, k, k, cin))
        md, sd = _rand_quant(rng, cin)
        yd = [lib.depthwise_conv(x, wd, b[:cin] if cin <= cout else None, H.Quant(md, sd, True), **args)
              for lib in libs.values()]
        assert _ndiff(yd[0], yd[1]) == 0
        xf = _i8(rng, (2, k * k * cin))
        yf = [lib.fully_connected(xf, wt.reshape(cout, -1), b, H.Quant(m, s, True), input_offset=5, output_offset=-3)
              for lib in libs.values()]
        assert _ndiff(yf[0], yf[1]) == 0


# --- single-operator models run by TFLite Micro -------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_single_op_models_vs_tflm(libs, seed, tmp_path):
    """Ops the MLPerf models lack, as tiny .tflite models executed by TFLite Micro."""
    pytest.importorskip("tflite")
    pytest.importorskip("tflite_micro")
    rng = np.random.default_rng(1000 + seed)
    for case in H.random_single_op_cases(rng):
        model = H.TfliteModel.from_bytes(case.model_bytes)
        ref = H.run_tflm_bytes(case.model_bytes, case.inputs)
        for v, lib in libs.items():
            y = H.run_layer(lib, model, model.layers[0], case.inputs)
            assert _ndiff(y, ref) == 0, (case.name, v)


# --- cross-compilation: code size and stack per kernel ------------------------------------------


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_cross_compile_sizes_and_stack(tmp_path):
    """No warnings; every frame static; the worst-case stack of every kernel call
    (its deepest call chain, assembly routines included) within 512 bytes."""
    from edgec.build import compile_objects
    from edgec.targets import load_target

    srcs = H.kernel_sources()
    table = {}
    for tname in ("cortex-m0plus", "cortex-m4", "cortex-m7"):
        res = compile_objects(srcs, load_target(tname), tmp_path / tname, [H.KERNEL_INCLUDE, H.KERNEL_DIR])
        assert not res.warnings, res.warnings
        sizes = {obj.replace(".o", ""): int(sz.text) for obj, sz in res.per_object.items()}
        for f in res.stack:
            assert f.is_static, f  # no VLAs, no alloca
        chains = H.worst_stack(tmp_path / tname)
        table[tname] = {"text": sizes, "total_text": int(res.sizes.text),
                        "stack": {k: v[0] for k, v in chains.items()}}
        for kernel, (nbytes, chain) in chains.items():
            assert nbytes <= 512, (tname, kernel, nbytes, chain)
        # the DSP-only GEMM compiles to nothing on the portable core and to code on DSP cores
        assert (sizes["edgec_nn_mat_mult_s8"] == 0) == (tname == "cortex-m0plus")
    (tmp_path / "kernel_sizes.json").write_text(json.dumps(table, indent=1))
    print("\nkernel .text bytes (m0plus / m4 / m7):")
    for obj in sorted(table["cortex-m7"]["text"]):
        print(f"  {obj:34s} " + " / ".join(str(table[t]["text"][obj]) for t in table))
    print("  total " + " / ".join(f"{table[t]['total_text']} B" for t in table))
    print("worst-case stack per call, bytes (m0plus / m4 / m7):")
    for k in sorted(table["cortex-m7"]["stack"]):
        print(f"  {k:34s} " + " / ".join(str(table[t]["stack"].get(k, "-")) for t in table))
