"""The int8 PTQ pass (edgec/passes/quantize_int8.py) and its calibration data
(edgec/calibration.py): float example models become integer edgec.q graphs whose
generated C is bit-exact with edgec's NumPy integer reference and agrees top-1
with the float model; the trained digits CNN loses <= 1 accuracy point; bad
calibration data and unquantizable ops give one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgec.calibration import (MIN_SAMPLES, MinMaxObserver, MSEObserver, PercentileObserver, load_calibration)
from edgec.compiler import QuantizeOptions, compile_model
from edgec.errors import EdgecError, InputFileError, ModelError, UnsupportedOpsError
from edgec.frontend import load_onnx
from edgec.hostrun import host_model_for
from edgec.passes import quantize_int8
from edgec.passes.pipeline import run_pipeline
from edgec.passes.to_nhwc_int8 import from_api, run_reference, to_api
from edgec.validate_int8 import compare_int8

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _calib(path: Path, shape, n: int = 32, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.standard_normal((n,) + tuple(shape[1:])).astype(np.float32))
    return path


@pytest.mark.parametrize("name", ["kws_dscnn", "resnet8_32"])
def test_ptq_examples_bit_exact_and_agree_with_float(name, tmp_path):
    src = EXAMPLES / f"{name}.onnx"
    shape = load_onnx(src).tensor("input").shape
    calib = _calib(tmp_path / "calib.npz", shape)
    r = compile_model(src, "host", build=False, quantize=QuantizeOptions(calib=calib))
    assert all(L.kind in ("runtime_c", "alias", "copy") for L in r.layers), [(L.name, L.kind) for L in r.layers]
    assert all(n.domain == "edgec.q" or n.op == "Copy" for n in r.graph.nodes)
    g = r.graph
    x_t, y_t = g.tensor(g.inputs[0]), g.tensor(g.outputs[0])
    assert x_t.dtype == y_t.dtype == "int8" and x_t.shape == (shape[0], shape[2], shape[3], shape[1])  # NHWC API
    assert r.quantization["observer"] == "minmax" and r.quantization["bias_correction_layers"] > 0
    weights = [t for t in g.constants() if t.dtype == "int8" and len(t.shape) == 4]
    assert weights and all(t.quant.scale.size == t.shape[0] or t.quant.axis == 3 for t in weights)  # per channel
    host = host_model_for(r)
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    (si,), (zi,) = x_t.quant.scale, x_t.quant.zero_point
    (so,), (zo,) = y_t.quant.scale, y_t.quant.zero_point
    rng = np.random.default_rng(123)
    agree, differing, runs = 0, 0, 30
    try:
        for _ in range(runs):
            x = rng.standard_normal(shape).astype(np.float32)
            q = np.clip(np.rint(x / si) + zi, -128, 127).astype(np.int8)
            ours = host.run([to_api(q)])[0]
            differing += int(np.count_nonzero(ours != run_reference(g, [to_api(q)])[0]))
            ref = sess.run(None, {"input": x})[0]
            agree += int(np.argmax((from_api(ours).astype(np.float32) - zo) * so) == np.argmax(ref))
    finally:
        host.close()
    print(f"{name}: top-1 agreement {agree}/{runs}, {differing} bytes differ from the NumPy reference")
    assert differing == 0
    assert agree >= 0.9 * runs


def test_ptq_builds_for_cortex_m7_with_int8_api(tmp_path):
    src = EXAMPLES / "kws_dscnn.onnx"
    calib = _calib(tmp_path / "calib.npz", (1, 1, 49, 10))
    out = tmp_path / "kws_int8"
    r = compile_model(src, "cortex-m7", out_dir=out, quantize=QuantizeOptions(calib=calib))
    h = (out / "model.h").read_text()
    assert "const int8_t *input" in h and "int8_t *output" in h
    assert "_INPUT0_SCALE" in h and "_INPUT0_ZERO_POINT" in h and "_OUTPUT0_SCALE" in h
    assert r.totals.weight_bytes < 36_000  # int8 weights + int32 biases + requant tables vs 90 KiB of float weights
    assert "quantization" in (out / "metadata.json").read_text()
    # deterministic: the same calibration gives byte-identical C
    r2 = compile_model(src, "cortex-m7", build=False, quantize=QuantizeOptions(calib=calib))
    assert r2.files["model.c"] == r.files["model.c"]


@pytest.fixture(scope="module")
def digits():
    if not (EXAMPLES / "digits_cnn.onnx").exists():
        pytest.skip("examples/digits_cnn.onnx not built")
    return EXAMPLES / "digits_cnn.onnx", EXAMPLES / "digits_calib.npz", EXAMPLES / "digits_test.npz"


@pytest.mark.parametrize("observer", ["minmax", "percentile", "mse"])
def test_digits_accuracy_drop_at_most_one_point(observer, digits):
    model, calib, test = digits
    r = compile_model(model, "host", build=False, quantize=QuantizeOptions(calib=calib, observer=observer))
    rep = compare_int8(model, r, 0, None, None, dataset=test)
    print(f"digits/{observer}: float {100 * rep.accuracy_float:.2f}%, int8 {100 * rep.accuracy_int8:.2f}%, "
          f"agreement {100 * rep.top1_agreement:.1f}%, steps {rep.outputs[0].histogram}")
    assert rep.labelled == 540 and rep.numpy_differing_bytes == 0
    assert rep.accuracy_float > 0.95
    assert rep.accuracy_drop <= 1.0
    assert rep.passed


def test_bias_correction_and_options_reach_the_report(digits):
    model, calib, _ = digits
    g = run_pipeline(load_onnx(model), list(quantize_int8.PASS.requires))
    samples = load_calibration(calib, g.inputs, [g.tensor(g.inputs[0]).shape])
    q1, rep1 = quantize_int8.quantize(g, quantize_int8.QuantizeConfig(samples))
    q2, rep2 = quantize_int8.quantize(g, quantize_int8.QuantizeConfig(samples, bias_correction=False))
    assert rep1.bias_corrected == 6 and rep2.bias_corrected == 0 and rep1.max_bias_shift > 0
    b1 = [t.data for t in q1.constants() if t.dtype == "int32"]
    b2 = [t.data for t in q2.constants() if t.dtype == "int32"]
    assert any(not np.array_equal(a, b) for a, b in zip(b1, b2))
    with pytest.raises(ModelError, match="calibration data"):
        quantize_int8.PASS(g)


# ---- observers -----------------------------------------------------------------------------


def test_observers():
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(1000).astype(np.float32) for _ in range(20)]
    data[3][5] = 40.0  # one outlier
    obs = [MinMaxObserver(), PercentileObserver(), MSEObserver()]
    for o in obs:
        for d in data:
            o.update(d)
    (lo0, hi0), (lo1, hi1), (lo2, hi2) = (o.range() for o in obs)
    assert hi0 == 40.0 and lo0 == pytest.approx(min(d.min() for d in data))
    assert 3.0 < hi1 < 6.0 and -6.0 < lo1 < -3.0  # the outlier is ignored
    assert hi2 < hi0 and lo2 >= lo0


# ---- calibration data: errors ---------------------------------------------------------------


NAMES, SHAPES = ["input"], [(1, 1, 8, 8)]


def test_calibration_formats(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((12, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "c.npy", x)
    assert len(load_calibration(tmp_path / "c.npy", NAMES, SHAPES)) == 12
    np.savez(tmp_path / "c.npz", input=x[:, None])  # (N, 1, 1, 8, 8): N samples of the full input shape
    assert len(load_calibration(tmp_path / "c.npz", NAMES, SHAPES)) == 12
    d = tmp_path / "folder"
    d.mkdir()
    for i in range(11):
        np.save(d / f"s{i:02d}.npy", x[i])
    s = load_calibration(d, NAMES, SHAPES)
    assert len(s) == 11 and s[0][0].shape == (1, 1, 8, 8) and np.array_equal(s[3][0][0], x[3])


@pytest.mark.parametrize("data,err,match", [
    (np.zeros((20, 1, 9, 8), np.float32), ModelError, r"has shape \(20, 1, 9, 8\); expected \(1, 1, 8, 8\)"),
    (np.zeros((20, 1, 8, 8), np.int64), ModelError, "dtype int64; float data expected"),
    (np.zeros((5, 1, 8, 8), np.float32), ModelError, "has 5 sample.*at least 10.*--calib-random"),
    (np.full((20, 1, 8, 8), np.nan, np.float32), ModelError, "NaN or Inf"),
])
def test_calibration_errors(data, err, match, tmp_path):
    p = tmp_path / "bad.npy"
    np.save(p, data)
    with pytest.raises(err, match=match) as e:
        load_calibration(p, NAMES, SHAPES)
    assert "\n" not in e.value.one_line()
    assert MIN_SAMPLES == 10


def test_calibration_missing_and_unreadable(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_calibration(tmp_path / "nope.npz", NAMES, SHAPES)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputFileError, match="cannot read"):
        load_calibration(tmp_path / "junk.npz", NAMES, SHAPES)
    np.savez(tmp_path / "other.npz", a=np.zeros((12, 1, 8, 8), np.float32), b=np.zeros((12, 1, 8, 8), np.float32))
    with pytest.raises(ModelError, match=r"no array for model input\(s\) \['input'\]"):
        load_calibration(tmp_path / "other.npz", NAMES, SHAPES)


def test_unquantizable_ops_listed_at_once():
    with pytest.raises(UnsupportedOpsError) as e:
        compile_model(EXAMPLES / "tiny_transformer.onnx", "host", build=False, quantize=QuantizeOptions(calib_random=True))
    msg = str(e.value)
    assert "LayerNormalization" in msg and "Transpose" in msg and "both operands are run-time tensors" in msg
    assert e.value.nodes and len({n[0] for n in e.value.nodes}) == len(e.value.nodes) >= 6


def test_quantize_needs_calibration():
    with pytest.raises(ModelError, match="--calib"):
        compile_model(EXAMPLES / "kws_dscnn.onnx", "host", build=False, quantize=QuantizeOptions())


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgec.cli", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_cli_bad_calibration_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((20, 3, 3), np.float32))
    p = _cli("compile", EXAMPLES / "kws_dscnn.onnx", "--quantize", "int8", "--calib", bad, "-o", tmp_path / "out", "--no-build")
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "shape (20, 3, 3)" in lines[0], p.stderr
    assert not (tmp_path / "out").exists()
    p = _cli("compile", EXAMPLES / "kws_dscnn.onnx", "--calib", bad, "-o", tmp_path / "out", "--no-build")
    assert p.returncode == 2 and "need --quantize int8" in p.stderr


def test_cli_calib_random_warns_and_validate_prints_histogram(tmp_path, digits):
    model, calib, test = digits
    p = _cli("compile", model, "--quantize", "int8", "--calib-random", "-o", tmp_path / "out", "--no-build", "-q")
    assert p.returncode == 0, p.stderr
    assert "WARNING" in p.stderr and "RANDOM" in p.stderr
    p = _cli("validate", model, "--quantize", "int8", "--calib", calib, "--dataset", test)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "accuracy on 540 labelled samples" in p.stdout and "quantization steps" in p.stdout and "PASS" in p.stdout
    assert isinstance(EdgecError("x").one_line(), str)
