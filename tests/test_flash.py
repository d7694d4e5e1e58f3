"""The host flasher (edgec.device.flash / stm32boot) against edgec's bootloader in
QEMU, through a clean socket and through the fault-injection proxy, plus the
refusals that must happen before a byte is sent. Every QEMU is stopped by its
pid in the fixtures; throughput is printed, not asserted."""

from __future__ import annotations

import random
import shutil
import socket
import sys
import threading
import time

import pytest

from edgec.boards import load_board
from edgec.build.bootloader import build_bootloader, build_go_test_app, flash_geometry
from edgec.device import qemu
from edgec.device.faultproxy import FaultProxy, FaultRates
from edgec.device.flash import FlashError, FlashReport, check_fits, flash_image
from edgec.device.stm32boot import Stm32Boot

needs_qemu = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="arm-none-eabi-gcc / qemu-system-arm not installed (make setup)",
)


@pytest.fixture(scope="module", autouse=True)
def _state_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEC_STATE_DIR", str(tmp_path_factory.mktemp("qemu-state")))
        yield


@pytest.fixture(scope="module")
def m7():
    return load_board("qemu-m7")


@pytest.fixture(scope="module")
def built(m7, tmp_path_factory):
    d = tmp_path_factory.mktemp("bl-qemu-m7")
    elf = build_bootloader(m7, d)
    _, app = build_go_test_app(m7, d)
    return elf, app.read_bytes()


@pytest.fixture
def running(m7, built):
    inst = qemu.start(m7, [(built[0], None)], record=False)
    try:
        yield inst
    finally:
        inst.stop()


def _echo_check(url: str) -> bytes:
    """Talk to the GO test app (it echoes in upper case)."""
    import serial

    s = serial.serial_for_url(url, timeout=0.2)
    try:
        out = b""
        end = time.monotonic() + 5
        while b"EDGEC" not in out and time.monotonic() < end:
            s.write(b"edgec")
            out += s.read(64)
        return out
    finally:
        s.close()


def _report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n    {text}", file=sys.stderr)


# --- refusals before anything is sent -------------------------------------------------------


class _Listener:
    """A TCP port that records whether anyone connected or sent a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(0.3)
        self.url = f"socket://127.0.0.1:{self.sock.getsockname()[1]}"

    def contacted(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return False
        conn.close()
        return True

    def close(self):
        self.sock.close()


def test_image_too_large_is_refused_before_sending(m7):
    g = flash_geometry(m7)
    lst = _Listener()
    try:
        big = bytes(g.app_size + 4)
        with pytest.raises(FlashError) as e:
            flash_image(lst.url, big, m7.layout["app_base"], m7)
        msg = str(e.value)
        assert "does not fit" in msg and str(len(big)) in msg and "4 bytes beyond" in msg
        assert f"{g.app_base:#x}..{g.flash_end:#x}" in msg and "\n" not in msg
        with pytest.raises(FlashError, match="outside the application region"):
            flash_image(lst.url, b"\0" * 64, 0x08000000, m7)  # onto the bootloader
        with pytest.raises(FlashError, match="outside the application region"):
            flash_image(lst.url, b"\0" * 64, 0x0, m7)
        with pytest.raises(FlashError, match="empty"):
            flash_image(lst.url, b"", m7.layout["app_base"], m7)
        with pytest.raises(FlashError, match="does not start with a vector table"):
            flash_image(lst.url, random.Random(0).randbytes(1024), m7.layout["app_base"], m7)  # GO would be refused
        assert not lst.contacted(), "the flasher opened the port before refusing"
    finally:
        lst.close()
    # The largest image that fits is accepted by the check, in either address view.
    assert check_fits(g.app_size, 0x08008000, m7) == m7.layout["app_base"]
    assert check_fits(g.app_size, m7.layout["app_base"], m7) == m7.layout["app_base"]


def test_geometry_of_the_emulated_parts():
    m7, m4 = load_board("qemu-m7"), load_board("qemu-m4")
    g7, g4 = flash_geometry(m7), flash_geometry(m4)
    assert [s for _, s in g7.sectors] == [32768] * 4 + [131072] + [262144] * 7  # RM0410, 2 MiB
    assert [s for _, s in g4.sectors] == [16384] * 4 + [65536] + [131072] * 7  # RM0090, 1 MiB
    assert g7.pages_for(0x8000, 0x8000 + 20 * 1024) == [1]
    assert g4.pages_for(0x8000, 0x8000 + 20 * 1024) == [2, 3]
    assert g7.to_wire(0x8000) == 0x08008000 and g7.to_native(0x08008000) == 0x8000


def test_pyocd_method_without_pyocd_is_a_clear_error(m7, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyocd", None)  # import pyocd -> ImportError
    monkeypatch.setitem(sys.modules, "pyocd.core.helpers", None)
    with pytest.raises(FlashError) as e:
        flash_image("socket://127.0.0.1:1", b"\0" * 16, 0x08008000, m7, method="pyocd")
    assert str(e.value) == "pyocd is not installed; pip install pyocd, or use --method stm32-serial"


def test_fault_proxy_is_seeded_and_counts(tmp_path):
    """The proxy alone, against an echo server: same seed, same faults."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    stop = threading.Event()

    def echo():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            with c:
                c.settimeout(0.2)
                while not stop.is_set():
                    try:
                        d = c.recv(4096)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not d:
                        break
                    c.sendall(d)

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    data = random.Random(1).randbytes(20000)
    results = []
    try:
        for _ in range(2):
            with FaultProxy(("127.0.0.1", srv.getsockname()[1]), seed=42,
                            to_board=FaultRates(drop=0.01, flip=0.01, dup=0.01), to_host=FaultRates()) as px:
                c = socket.create_connection(("127.0.0.1", px.port))
                c.sendall(data)
                got = b""
                c.settimeout(0.5)
                try:
                    while True:
                        d = c.recv(65536)
                        if not d:
                            break
                        got += d
                except TimeoutError:
                    pass
                c.close()
                counts = px.counts
                results.append((got, counts["to_board"].dropped, counts["to_board"].flipped,
                                counts["to_board"].duplicated))
                assert counts["to_board"].bytes == len(data)
                assert counts["to_host"].injected == 0
                assert 100 < counts["to_board"].injected < 1000
                assert len(got) == len(data) - counts["to_board"].dropped + counts["to_board"].duplicated
        assert results[0] == results[1]
    finally:
        stop.set()
        t.join(2)
        srv.close()


# --- flashing QEMU --------------------------------------------------------------------------------


@needs_qemu
def test_flash_verify_go_and_throughput(m7, built, running, capsys):
    image = random.Random(3).randbytes(20 * 1024)
    phases = []
    r = flash_image(running.url, image, m7.layout["app_base"], m7, go=False,
                    progress=lambda ph, d, t: phases.append(ph))
    assert isinstance(r, FlashReport) and r.verified and not r.started
    assert r.bytes == len(image) and r.address == 0x08008000 and r.pages_erased == [1]
    assert r.product_id == 0x451 and r.retries == 0
    assert {"erase", "write", "verify"} <= set(phases)
    with Stm32Boot.open(running.url) as bl:
        bl.connect()
        assert bl.read_memory(0x08008000, len(image)) == image
    _report(capsys, f"flash throughput over socket:// (qemu-m7, {len(image)} B): write {r.kb_per_s:.1f} KB/s, "
                    f"verify {len(image) / 1024 / r.verify_seconds:.1f} KB/s, total {r.seconds:.2f} s")

    r = flash_image(running.url, built[1], 0x8000, m7)  # native address view, then GO
    assert r.verified and r.started
    assert b"EDGEC" in _echo_check(running.url)


@needs_qemu
def test_interrupted_flash_then_reflash_succeeds(m7, built, running):
    image = random.Random(4).randbytes(24 * 1024)
    with FaultProxy(running.url) as px:  # no faults: only used to pull the cable

        def cut(phase, done, total):
            if phase == "write" and done >= total // 2:
                px.kill_connections()

        with pytest.raises(FlashError) as e:
            flash_image(px.url, image, m7.layout["app_base"], m7, go=False, progress=cut)
        assert "\n" not in str(e.value)
        assert px.counts["to_board"].bytes > len(image) // 2
    # The board is still in its bootloader: a new flash (the test app) succeeds and runs.
    r = flash_image(running.url, built[1], m7.layout["app_base"], m7)
    assert r.verified and r.started
    assert b"EDGEC" in _echo_check(running.url)


@needs_qemu
@pytest.mark.parametrize("seed,rate", [(11, 0.0003), (12, 0.02)])
def test_flash_through_fault_proxy_never_silently_wrong(m7, running, capsys, seed, rate):
    """A bad line: the flash either succeeds and the image reads back equal on a
    clean connection, or fails with a clear one-line error."""
    image = random.Random(seed).randbytes(8 * 1024)
    with FaultProxy(running.url, seed=seed, drop=rate, flip=rate, dup=rate) as px:
        t0 = time.monotonic()
        try:
            r = flash_image(px.url, image, m7.layout["app_base"], m7, go=False, timeout=0.5, retries=5)
            outcome = f"flashed and verified, {r.retries} retries, {r.repaired_blocks} blocks repaired"
        except FlashError as e:
            r = None
            outcome = f"failed cleanly: {str(e)[:150]}..."
            assert "\n" not in str(e) and str(e)
        dt = time.monotonic() - t0
    _report(capsys, f"fault proxy seed {seed}, rate {rate}/byte each of drop/flip/dup: {outcome} in {dt:.1f} s; "
                    f"injected {px.summary()}")
    assert px.injected > 0
    if rate < 0.001:
        assert r is not None, "the flasher should get through a line this good"
    if r is not None:
        with Stm32Boot.open(running.url) as bl:
            bl.connect()
            assert bl.read_memory(0x08008000, len(image)) == image
