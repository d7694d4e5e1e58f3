"""The MLPerf Tiny int8 models end to end on the host: edgec's generated C
(runtime_c int8 kernels) against TFLite Micro's own interpreter (the semantics
microcontrollers run), 50 random inputs each: 0 differing bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgec.compiler import compile_model
from edgec.hostrun import host_model_for

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

MODELS = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "mlperf_tiny"
INT8 = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model"]


@pytest.mark.parametrize("name", INT8)
def test_bit_exact_with_tflite_micro(name, tmp_path):
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not present")
    r = compile_model(path, "host", build=False)
    assert all(L.kind in ("runtime_c", "alias") for L in r.layers), [L.kind for L in r.layers]
    host = host_model_for(r)
    tflm = runtime.Interpreter.from_file(str(path))
    rng = np.random.default_rng(1234)
    differing = compared = 0
    try:
        for _ in range(50):
            x = rng.integers(-128, 128, size=host.input_shapes[0], dtype=np.int8)
            tflm.set_input(x, 0)
            tflm.invoke()
            want = np.asarray(tflm.get_output(0))
            got = host.run([x])[0]
            assert got.dtype == np.int8
            differing += int(np.count_nonzero(got.reshape(-1) != want.reshape(-1)))
            compared += got.size
    finally:
        host.close()
    print(f"{name}: {compared} output bytes compared over 50 inputs, {differing} differ")
    assert differing == 0


@pytest.mark.parametrize("name", ["kws_ref_model", "pretrainedResnet_quant"])
def test_int8_build_for_cortex_m(name, tmp_path):
    """The int8 C builds for M4/M7 (DSP paths) and M0+ (portable), with real sizes."""
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not present")
    for target in ("cortex-m7", "cortex-m4", "cortex-m0plus"):
        r = compile_model(path, target, out_dir=tmp_path / f"{name}-{target}", ram_kb=1024, flash_kb=4096)
        assert r.totals.flash_bytes >= r.totals.weight_bytes
        assert r.build.sizes.bss >= r.totals.arena_bytes
        assert 0 < r.totals.max_stack_bytes < 2048
        assert any(f.endswith("_s8.c") for f in r.files)
        model_h = (tmp_path / f"{name}-{target}" / "model.h").read_text()
        assert "const int8_t *" in model_h and "_INPUT0_SCALE" in model_h
