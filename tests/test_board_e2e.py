"""The main job on emulated boards, exactly as a user does it: compile with
--board, start the board (booted into edgec's serial bootloader), flash over
the serial port, run, and compare with the host build bit for bit."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgec.boards import load_board
from edgec.build.bootloader import build_bootloader
from edgec.cli import main
from edgec.compiler import compile_model
from edgec.device import qemu
from edgec.device.faultproxy import FaultProxy
from edgec.device.flash import flash_image
from edgec.device.link import Link, LinkError
from edgec.device.session import BuildFolder, WrongModelError, check_board_model, run_on_board
from onnx_builders import conv_bn_relu, save

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed")


@pytest.fixture(autouse=True)
def _state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEC_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def started():
    """Start boards into the bootloader; stop every one by pid afterwards."""
    instances = []

    def start(name, tmp):
        b = load_board(name)
        inst = qemu.start(b, [(build_bootloader(b, tmp / f"bl-{name}"), None)], record=False)
        instances.append(inst)
        return b, inst

    yield start
    for inst in instances:
        inst.stop()
        assert not inst.alive()


def _flash_build(out, board, url):
    bf = BuildFolder.open(out)
    image, fw = bf.firmware()
    rep = flash_image(url, image, fw["load_address"], board)
    assert rep.verified and rep.started
    return bf, rep


def _compare(bf, url, runs=2, seed=0):
    rng = np.random.default_rng(seed)
    host = bf.host_model()
    try:
        with Link(url) as link:
            info = check_board_model(link, bf)
            counters = []
            for _ in range(runs):
                x = [rng.standard_normal(s).astype(np.float32) for s in bf.input_shapes()]
                r = run_on_board(link, bf, x, info)
                for a, b in zip(r.outputs, host.run(x)):
                    assert a.dtype == b.dtype and a.shape == b.shape
                    assert a.tobytes() == b.tobytes()  # bit for bit
                counters.append(r.counter)
            return info, counters
    finally:
        host.close()


def test_kws_on_qemu_m7_via_cli(tmp_path, examples_dir):
    """compile -> board start -> flash -> run -> profile, through the CLI."""
    cli = CliRunner()
    out = tmp_path / "kws"
    res = cli.invoke(main, ["compile", str(examples_dir / "kws_dscnn.onnx"), "--board", "qemu-m7", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert (out / "firmware.bin").exists() and (out / "firmware.elf").exists()
    res = cli.invoke(main, ["board", "start", "qemu-m7"])
    assert res.exit_code == 0, res.output
    url = res.stdout.strip()
    assert url.startswith("socket://127.0.0.1:")
    try:
        res = cli.invoke(main, ["flash", str(out), "--port", url])
        assert res.exit_code == 0, res.output
        assert "verified" in res.stdout and "started" in res.stdout
        res = cli.invoke(main, ["run", str(out), "--port", url, "--runs", "2", "--json", str(tmp_path / "run.json")])
        assert res.exit_code == 0, res.output
        import json

        runs = json.loads((tmp_path / "run.json").read_text())["runs"]
        assert [r["bytes_differing_from_host"] for r in runs] == [0, 0]
        assert all(r["max_abs_error_vs_onnxruntime"] < 1e-5 for r in runs)
        assert runs[0]["counter"] == runs[1]["counter"] > 1_000_000
        res = cli.invoke(main, ["profile", str(out), "--port", url, "--runs", "2", "--json", str(tmp_path / "p.json"),
                                "--png", str(tmp_path / "p.png")])
        assert res.exit_code == 0, res.output
        prof = json.loads((tmp_path / "p.json").read_text())
        assert prof["total_spread"] == 0  # deterministic under -icount
        assert sum(L["count"] for L in prof["layers"]) <= prof["total"]
        assert sum(L["count"] for L in prof["layers"]) > 0.95 * prof["total"]
        assert (tmp_path / "p.png").stat().st_size > 5000
    finally:
        res = cli.invoke(main, ["board", "stop", "qemu-m7"])
        assert res.exit_code == 0
    assert qemu.running("qemu-m7") is None


@pytest.mark.parametrize("board_name", ["qemu-m4", "qemu-m55"])
def test_small_model_on_other_boards(board_name, tmp_path, started):
    p = save(conv_bn_relu(np.random.default_rng(3), c_in=3, c_out=8, hw=12), tmp_path / "cbr.onnx")
    compile_model(p, None, board=board_name, out_dir=tmp_path / "cbr")
    board, inst = started(board_name, tmp_path)
    bf, _ = _flash_build(tmp_path / "cbr", board, inst.url)
    info, counters = _compare(bf, inst.url, runs=2)
    assert info["board"] == board_name
    assert counters[0] == counters[1]


def test_wrong_model_on_board_is_refused(tmp_path, started):
    rng = np.random.default_rng(0)
    a = save(conv_bn_relu(rng, c_out=4), tmp_path / "a.onnx")
    b = save(conv_bn_relu(rng, c_out=6), tmp_path / "b.onnx")
    compile_model(a, None, board="qemu-m7", out_dir=tmp_path / "a")
    compile_model(b, None, board="qemu-m7", out_dir=tmp_path / "b")
    board, inst = started("qemu-m7", tmp_path)
    _flash_build(tmp_path / "a", board, inst.url)
    with Link(inst.url) as link, pytest.raises(WrongModelError, match="wrong model on the board"):
        check_board_model(link, BuildFolder.open(tmp_path / "b"))


def test_fault_injection_never_returns_a_wrong_result(tmp_path, started):
    """Bytes dropped, flipped and duplicated in both directions: every run
    either returns the host build's exact output or fails with a clear error."""
    p = save(conv_bn_relu(np.random.default_rng(5), c_out=8, hw=10), tmp_path / "f.onnx")
    compile_model(p, None, board="qemu-m7", out_dir=tmp_path / "f")
    board, inst = started("qemu-m7", tmp_path)
    bf, _ = _flash_build(tmp_path / "f", board, inst.url)
    host = bf.host_model()
    rng = np.random.default_rng(1)
    ok = failed = wrong = injected = 0
    # a light rate (most runs survive by retrying) and a heavy one (many fail clearly)
    for seed, rate, runs in ((7, 0.0003, 12), (8, 0.003, 6)):
        with FaultProxy(inst.url, seed=seed, drop=rate, flip=rate, dup=rate * 2 / 3) as proxy:
            for _ in range(runs):
                x = [rng.standard_normal(s).astype(np.float32) for s in bf.input_shapes()]
                try:
                    with Link(proxy.url, timeout=0.5, attempts=6) as link:
                        r = run_on_board(link, bf, x)
                except (LinkError, WrongModelError) as e:
                    assert len(str(e).splitlines()) == 1
                    print("clear failure:", e)
                    failed += 1
                    continue
                if all(a.tobytes() == b.tobytes() for a, b in zip(r.outputs, host.run(x))):
                    ok += 1
                else:
                    wrong += 1
            injected += proxy.injected
    host.close()
    print(f"fault injection: runs={ok + failed + wrong} ok={ok} failed-clearly={failed} wrong={wrong} faults injected={injected}")
    assert wrong == 0
    assert injected > 0
    assert ok > 0
