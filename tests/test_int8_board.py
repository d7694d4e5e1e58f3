"""int8 models on the emulated Cortex-M7 board: MLPerf Tiny's kws, resnet and vww
(TFLite, full-integer; vww's pruned pointwise layers take the pruned kernel) compiled with --board qemu-m7, booted in QEMU, run over
the serial protocol with random int8 inputs: bit for bit equal to the host build
of the same C and to TFLite Micro. The kernels' DSP path (the default on
Cortex-M7) and their portable C path (firmware built with portable_kernels=True,
i.e. -DEDGEC_KERNELS_PORTABLE) give identical bytes; both instruction counts are
printed. Per-layer profiling and the MLPerf Tiny text mode (kws01 int8 bytes,
ic01 uint8 pixels, ad01 float features, as the reference firmware takes them)
work for int8 models."""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from edgec.boards import load_board
from edgec.build.firmware import build_firmware
from edgec.compiler import compile_model
from edgec.device.session import BuildFolder, dequantize, quantize, random_inputs
from edgec.resources import mlperf_models_dir

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

MODELS = mlperf_models_dir()
HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None
pytestmark = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / arm-none-eabi-gcc not installed (make setup)")
BOARD = "qemu-m7"
KWS, RESNET, AD01, VWW = "kws_ref_model", "pretrainedResnet_quant", "ad01_int8", "vww_96_int8"
COUNTS: dict[tuple[str, str], int] = {}  # (model, kernels) -> instructions per inference, for the summary


def _model(name: str) -> Path:
    p = MODELS / f"{name}.tflite"
    if not p.exists():
        pytest.skip(f"{p} not present")
    return p


@pytest.fixture(autouse=True)
def _qemu_state(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEC_STATE_DIR", str(tmp_path / "qemu-state"))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """CompileResults with firmware (--board qemu-m7), by model name, built on first use."""
    root = tmp_path_factory.mktemp("int8")
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = compile_model(_model(name), None, board=BOARD, out_dir=root / name)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def firmware(compiled, tmp_path_factory):
    """Firmware images by (model, variant): "dsp" (the compile's), "portable", "mlperf"."""
    root = tmp_path_factory.mktemp("fw")
    cache = {}

    def get(name: str, variant: str = "dsp"):
        if (name, variant) not in cache:
            r = compiled(name)
            if variant == "dsp":
                img = r.firmware
            elif variant == "portable":
                img = build_firmware(r, load_board(BOARD), root / f"{name}-portable", portable_kernels=True)
            else:
                img = build_firmware(r, load_board(BOARD), root / f"{name}-mlperf", "mlperf")
            cache[name, variant] = img
        return cache[name, variant]

    return get


@pytest.fixture(scope="module")
def hosts(compiled):
    models = {}

    def get(name: str):
        if name not in models:
            models[name] = BuildFolder.open(compiled(name).out_dir).host_model()
        return models[name]

    yield get
    for m in models.values():
        m.close()


@contextmanager
def booted(image):
    """QEMU running the application directly (boot stub + firmware.bin); stopped by its pid."""
    from edgec.device import qemu

    inst = qemu.start(load_board(BOARD), image.qemu_images(), record=False, wait_connect=True)
    try:
        yield inst
    finally:
        inst.stop()


def _tflm(name: str, x: np.ndarray) -> np.ndarray:
    interp = runtime.Interpreter.from_file(str(_model(name)))
    interp.set_input(x, 0)
    interp.invoke()
    return np.asarray(interp.get_output(0))


def _run(link, bf: BuildFolder, xs: list[np.ndarray]):
    from edgec.device.session import run_on_board

    info = link.info()
    return [run_on_board(link, bf, [x], info) for x in xs]


@pytest.mark.parametrize("name", [KWS, RESNET, VWW])
def test_int8_bit_exact_on_board(name, compiled, firmware, hosts):
    """INFO reports int8 tensors with scale and zero point; random int8 inputs give
    the host build's bytes and TFLite Micro's; counts repeat; PROFILE covers the layers."""
    from edgec.device.link import Link

    r, img, host = compiled(name), firmware(name), hosts(name)
    bf = BuildFolder.open(r.out_dir)
    xs = [random_inputs(bf, np.random.default_rng(seed))[0] for seed in range(3)]
    assert all(x.dtype == np.int8 for x in xs)
    with booted(img) as inst, Link(inst.url) as link:
        info = link.info()
        assert info == img.info
        t_in, t_out = info["inputs"][0], info["outputs"][0]
        meta_in, meta_out = r.graph.tensor(r.graph.inputs[0]), r.graph.tensor(r.graph.outputs[0])
        assert t_in["dtype"] == t_out["dtype"] == "int8"
        assert t_in["bytes"] == int(np.prod(meta_in.shape)) and t_out["bytes"] == int(np.prod(meta_out.shape))
        assert t_in["zero_point"] == bf.meta["inputs"][0]["zero_point"] and t_in["scale"] == bf.meta["inputs"][0]["scale"]
        assert t_out["zero_point"] == bf.meta["outputs"][0]["zero_point"]
        assert info["kernels"] == "dsp" and info["layer_profile"] is True
        runs = _run(link, bf, xs)
        for x, br in zip(xs, runs):
            y = br.outputs[0]
            assert y.dtype == np.int8 and y.shape == tuple(meta_out.shape)
            assert y.tobytes() == host.run([x])[0].tobytes(), "board and host builds of the same C differ"
            assert y.tobytes() == np.ascontiguousarray(_tflm(name, x), np.int8).tobytes(), "board differs from TFLite Micro"
        counts = [br.counter for br in runs]
        again = _run(link, bf, xs[:1])[0]
        assert again.counter == counts[0], "the same input must count the same"
        profile = link.profile(len(r.layers))
        assert sum(profile) <= again.counter < sum(profile) + 5000
        assert all(p > 0 for p, L in zip(profile, r.layers) if L.kind != "alias")
        assert again.counter > r.totals.macs / 2  # sanity: at most 2 MACs per instruction on an M7
    COUNTS[name, "dsp"] = counts[0]
    print(f"\n{name} on {BOARD} (DSP kernels): {counts[0]:,} instructions per inference, "
          f"{r.totals.macs / counts[0]:.3f} MACs/instruction")


@pytest.mark.parametrize("name", [KWS, RESNET])
def test_dsp_and_portable_kernels_identical(name, compiled, firmware, hosts):
    """The portable C path (-DEDGEC_KERNELS_PORTABLE on the Cortex-M7) gives the same
    bytes as the DSP path; it needs more instructions (both are printed)."""
    from edgec.device.link import Link

    r, host = compiled(name), hosts(name)
    bf = BuildFolder.open(r.out_dir)
    xs = [random_inputs(bf, np.random.default_rng(100 + seed))[0] for seed in range(2)]
    results = {}
    for variant in ("dsp", "portable"):
        img = firmware(name, variant)
        assert img.options["kernels"] == variant
        with booted(img) as inst, Link(inst.url) as link:
            assert link.info()["kernels"] == variant
            results[variant] = _run(link, bf, xs)
    for x, d, p in zip(xs, results["dsp"], results["portable"]):
        assert d.outputs[0].tobytes() == p.outputs[0].tobytes() == host.run([x])[0].tobytes()
    dsp, portable = results["dsp"][0].counter, results["portable"][0].counter
    COUNTS[name, "portable"] = portable
    print(f"\n{name} on {BOARD}: DSP kernels {dsp:,} instructions, portable kernels {portable:,} "
          f"({portable / dsp:.2f}x); {r.totals.macs / dsp:.3f} vs {r.totals.macs / portable:.3f} MACs/instruction")
    # the switch took effect: the DSP path is the faster one
    assert portable > dsp * 1.05, f"portable {portable:,} vs DSP {dsp:,}: was the DSP path compiled out?"


def test_profile_int8(compiled, firmware):
    """`edgec profile`'s engine on an int8 model: int8 random inputs, per-layer counts
    that are deterministic and add up to the inference."""
    from edgec.device.link import Link
    from edgec.device.profile import profile_on_board

    r = compiled(KWS)
    bf = BuildFolder.open(r.out_dir)
    with booted(firmware(KWS)) as inst, Link(inst.url) as link:
        p = profile_on_board(link, bf, runs=2)
    assert p.total_spread == 0
    assert p.macs == r.totals.macs
    layer_sum = sum(L.count for L in p.layers)
    assert layer_sum <= p.total < layer_sum + 5000
    convs = [L for L in p.layers if L.op in ("Conv2D", "DepthwiseConv2D")]
    assert convs and all(L.count > 0 and L.macs_per_count > 0 for L in convs)


# --- MLPerf Tiny text mode -------------------------------------------------------------


class _Dut:
    """The MLPerf Tiny runner's side of the text protocol (commands end with '%',
    replies end with m-ready)."""

    def __init__(self, url: str):
        import serial

        self.port = serial.serial_for_url(url, timeout=0.05)
        self.buf = bytearray()

    def command(self, text: str, wait: float = 30.0) -> list[str]:
        if text:
            self.port.write(text.encode())
        lines: list[str] = []
        end = time.monotonic() + wait
        while time.monotonic() < end:
            k = self.buf.find(b"\n")
            if k < 0:
                self.buf.extend(self.port.read(4096))
                continue
            line = self.buf[:k].decode().rstrip("\r")
            del self.buf[: k + 1]
            lines.append(line)
            if line == "m-ready":
                return lines
        raise AssertionError(f"no m-ready after {text!r}: {lines}")

    def load(self, data: bytes) -> None:
        assert self.command(f"db load {len(data)}%") == [f"m-[Expecting {len(data)} bytes]", "m-ready"]
        for i in range(0, len(data), 31):  # the runner's chunks (31 bytes without a power monitor)
            lines = self.command(f"db {data[i:i + 31].hex()}%")
        assert lines == ["m-load-done", "m-ready"]

    def infer(self, n: int = 1, warmup: int = 1) -> tuple[list[float], list[int] | None]:
        lines = self.command(f"infer {n} {warmup}%")
        assert lines[:3] == [f"m-warmup-start-{warmup}", "m-warmup-done", f"m-infer-start-{n}"]
        assert lines[3].startswith("m-lap-us-") and lines[4].startswith("m-lap-us-") and lines[5] == "m-infer-done"
        res = [ln for ln in lines if ln.startswith("m-results-[")]
        raw = [ln for ln in lines if ln.startswith("m-results-int8-[")]
        assert len(res) == 1 and lines[-1] == "m-ready"
        values = [float(v) for v in res[0][len("m-results-["):-1].split(",")]
        ints = [int(v) for v in raw[0][len("m-results-int8-["):-1].split(",")] if raw else None
        assert self.command("results%")[:-1] == [ln for ln in lines if ln.startswith("m-results")]
        return values, ints

    def close(self) -> None:
        self.port.close()


@pytest.mark.parametrize("name,model_id", [(KWS, "kws01"), (RESNET, "ic01"), (AD01, "ad01")])
def test_mlperf_mode_int8(name, model_id, compiled, firmware, hosts):
    """infer/results as the MLPerf Tiny runner reads them: the runner sends what the
    reference firmware takes (kws01: int8 features; ic01: uint8 pixels, x - 128 on the
    board; ad01: float32 features, quantized on the board) and reads floats (int8
    outputs dequantized, `(q - zp) * scale`; ad01: the mean squared error between the
    dequantized output and the input). The raw int8 outputs follow on m-results-int8."""
    r, host, img = compiled(name), hosts(name), firmware(name, "mlperf")
    bf = BuildFolder.open(r.out_dir)
    (s_in, z_in), (s_out, z_out) = bf.quant("inputs")[0], bf.quant("outputs")[0]
    rng = np.random.default_rng(7)
    shape = bf.input_shapes()[0]
    if model_id == "ad01":
        features = (rng.standard_normal(shape) * 4).astype(np.float32)
        sent = features.tobytes()
        x = quantize(features, s_in, z_in, np.int8)
    else:
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        sent = (x.astype(np.int16) + 128).astype(np.uint8).tobytes() if model_id == "ic01" else x.tobytes()
    want = host.run([x])[0].reshape(-1)
    assert np.array_equal(want, _tflm(name, x).reshape(-1))
    deq = dequantize(want, s_out, z_out)
    dut = None
    with booted(img) as inst:
        try:
            dut = _Dut(inst.url)
            assert dut.command("")[-2:] == ["m-init-done", "m-ready"]
            assert dut.command("profile%")[1] == f"m-model-[{model_id}]"
            assert dut.command("name%") == [f"m-name-dut-[edgec-{bf.name}]", "m-ready"]
            dut.load(sent)
            assert dut.command("db print%")[0] == "m-buffer-" + "-".join(f"{b:02x}" for b in sent[:8])  # as sent
            values, ints = dut.infer(2, 1)
        finally:
            if dut is not None:
                dut.close()
    assert ints == want.tolist(), "the raw int8 outputs must equal the host build's"
    if model_id == "ad01":
        diffsum = np.float32(0)
        for o, f in zip(deq, features.reshape(-1)):  # the reference's float loop, in order
            d = np.float32(o - f)
            diffsum = np.float32(diffsum + np.float32(d * d))
        mse = np.float32(diffsum / np.float32(want.size))
        assert len(values) == 1 and np.float32(values[0]) == mse, (values, mse)
    else:
        assert np.array_equal(np.array(values, np.float32), deq), "results must read back to the dequantized floats"
        # what the runner does with them: normalise by the sum, arg-max
        assert int(np.argmax(np.array(values) / sum(values))) == int(np.argmax(want))


def test_summary():
    """Prints the instruction counts measured above (run with -s to see them)."""
    if not COUNTS:
        pytest.skip("no counts measured")
    for (name, kernels), n in sorted(COUNTS.items()):
        print(f"\n{name:24s} {kernels:9s} {n:>12,} instructions per inference on {BOARD}")
