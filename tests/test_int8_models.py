"""The MLPerf Tiny int8 models end to end on the host: edgec's generated C
(runtime_c int8 kernels) against TFLite Micro's own interpreter (the semantics
microcontrollers run), 50 random inputs each: 0 differing bytes."""

from __future__ import annotations

import numpy as np
import pytest

from edgec.compiler import compile_model
from edgec.hostrun import host_model_for
from edgec.resources import mlperf_models_dir

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

MODELS = mlperf_models_dir()
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


def test_pruned_pointwise_filters_stay_out_of_flash(tmp_path):
    """vww's pointwise layers have 971 all-zero filters (152,640 B): compiled for an
    M7 they take edgec_convolve_1x1_pruned_s8 with only the live filters in flash
    (bit-exactness: test_bit_exact_with_tflite_micro, and tests/test_int8_board.py
    for the DSP path)."""
    path = MODELS / "vww_96_int8.tflite"
    if not path.exists():
        pytest.skip(f"{path} not present")
    r = compile_model(path, "cortex-m7", out_dir=tmp_path / "vww")
    g = r.graph
    want, zero_bytes = {}, 0
    for L in r.layers:
        node = next(n for n in g.nodes if n.outputs[0] == L.output)
        w = g.tensor(node.inputs[1]).data if node.op == "Conv2D" else None
        if w is not None and w.shape[1:3] == (1, 1):
            dead = int(np.count_nonzero(~np.any(w.reshape(w.shape[0], -1) != 0, axis=1)))
            if dead:
                want[L.index] = dead
                zero_bytes += dead * w[0].size
    got = {L.index: int(L.reason.split("pruned: ")[1].split(" of")[0]) for L in r.layers if "pruned:" in L.reason}
    assert got == want and sum(want.values()) == 971 and zero_bytes == 152_640
    model_c = (tmp_path / "vww" / "model.c").read_text()
    assert model_c.count("edgec_convolve_1x1_pruned_s8(") == len(want)
    # flash: the live weights + ~23 KB of kernel code + ~14 KB of per-channel multipliers/shifts
    assert r.totals.flash_bytes < r.totals.weight_bytes - zero_bytes + 48 * 1024


@pytest.mark.parametrize("name", ["kws_ref_model", "pretrainedResnet_quant", "ad01_int8"])
def test_tvm_generated_int8_kernels_bit_exact(name):
    """The second implementation: integer kernels generated through TVM (Relax
    emit_te -> TIR -> C, requantization written in TIR) match TFLite Micro too."""
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not present")
    r = compile_model(path, "host", build=False, kernels="tvm")
    kinds = {L.op: L.kind for L in r.layers}
    assert kinds.get("FullyConnected") == "tvm"
    assert all(k in ("tvm", "alias") for op, k in kinds.items() if op != "Softmax")
    host = host_model_for(r)
    tflm = runtime.Interpreter.from_file(str(path))
    rng = np.random.default_rng(99)
    differing = 0
    try:
        for _ in range(10):
            x = rng.integers(-128, 128, size=host.input_shapes[0], dtype=np.int8)
            tflm.set_input(x, 0)
            tflm.invoke()
            differing += int(np.count_nonzero(host.run([x])[0].reshape(-1) != np.asarray(tflm.get_output(0)).reshape(-1)))
    finally:
        host.close()
    assert differing == 0


@pytest.mark.parametrize("op,opts", [("ADD", "AddOptions"), ("MUL", "MulOptions")])
def test_broadcast_falls_back_to_the_tvm_kernel(tmp_path, op, opts):
    """runtime_c's int8 add/mul take equal shapes or a scalar; a general
    broadcast goes to the TVM-generated kernel, still bit-exact with TFLite Micro."""
    from test_tflite_frontend import _tflm, act, build_tflite

    tensors = [act("a", (1, 4, 5, 6), 0.04, -7), act("b", (1, 1, 1, 6), 0.11, 12), act("y", (1, 4, 5, 6), 0.09, 3)]
    data = build_tflite(tensors, [dict(op=op, inputs=[0, 1], outputs=[2], options=(opts, dict(FusedActivationFunction=1)))],
                        [0, 1], [2])
    p = tmp_path / "b.tflite"
    p.write_bytes(data)
    r = compile_model(p, "host", build=False)
    assert [L.kind for L in r.layers] == ["tvm"]
    host = host_model_for(r)
    it = _tflm(data)
    rng = np.random.default_rng(3)
    try:
        for _ in range(3):
            xs = [rng.integers(-128, 128, (1, 4, 5, 6), dtype=np.int8), rng.integers(-128, 128, (1, 1, 1, 6), dtype=np.int8)]
            for k, x in enumerate(xs):
                it.set_input(x, k)
            it.invoke()
            assert np.array_equal(host.run(xs)[0], it.get_output(0))
    finally:
        host.close()


def test_validate_cli_against_tflite(tmp_path):
    import json

    from click.testing import CliRunner

    from edgec.cli import main

    path = MODELS / "ad01_int8.tflite"
    if not path.exists():
        pytest.skip(f"{path} not present")
    cli = CliRunner()
    res = cli.invoke(main, ["validate", str(path), "--runs", "5", "--json", str(tmp_path / "v.json")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "v.json").read_text())
    tflm = rep["references"][0]
    assert tflm["name"] == "TFLite Micro" and tflm["compared"] == 5 * 640 and tflm["differing"] == 0
    out = tmp_path / "b"
    assert cli.invoke(main, ["compile", str(path), "-o", str(out), "-q"]).exit_code == 0
    res = cli.invoke(main, ["validate", str(out), "--against", "tflite", "--runs", "3"])
    assert res.exit_code == 0, res.output
    assert "bit-exact" in res.stdout
