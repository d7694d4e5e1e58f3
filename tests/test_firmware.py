"""Firmware: the compiled model + runtime_c/firmware + board code builds and
links for every board; on the emulated boards the application boots in QEMU
(directly, without the bootloader: a boot stub at flash_base holds its
initial stack pointer and reset vector, firmware.bin goes to app_base) and
runs the model over the serial protocol, bit for bit equal to the host build
of the same C, with counts that repeat exactly; the MLPerf Tiny text mode
answers like the reference firmware."""

from __future__ import annotations

import shutil
import struct
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from edgec.boards import load_board
from edgec.build.elfsize import elf_sections
from edgec.build.firmware import build_firmware, model_hash
from edgec.compiler import compile_model
from edgec.errors import BuildError
from edgec.hostrun import host_model_for

HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None
needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc not installed (make setup)")
needs_qemu = pytest.mark.skipif(not (HAVE_ARM and HAVE_QEMU), reason="qemu-system-arm not installed (make setup)")

BOARDS = ("qemu-m7", "qemu-m4", "qemu-m55", "nucleo-f767zi", "nucleo-h743zi", "disco-f746ng")
EMULATED = ("qemu-m7", "qemu-m4", "qemu-m55")


@pytest.fixture(scope="module")
def kws(examples_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("kws") / "build"
    return compile_model(examples_dir / "kws_dscnn.onnx", "cortex-m7", out_dir=out)


@pytest.fixture(scope="module")
def host(kws):
    model = host_model_for(kws)
    yield model
    model.close()


@pytest.fixture(scope="module")
def firmware(kws, tmp_path_factory):
    """Firmware images by (board, harness), built on first use."""
    root = tmp_path_factory.mktemp("fw")
    cache = {}

    def get(board: str, harness: str = "edgec"):
        if (board, harness) not in cache:
            kw = {"mlperf_model": "kws01"} if harness == "mlperf" else {}
            cache[board, harness] = build_firmware(kws, load_board(board), root / f"{board}-{harness}", harness, **kw)
        return cache[board, harness]

    return get


@pytest.fixture(autouse=True)
def _qemu_state(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEC_STATE_DIR", str(tmp_path / "qemu-state"))


@contextmanager
def booted(image, board_name: str):
    """QEMU running the application directly; always stopped (by its pid)."""
    from edgec.device import qemu

    inst = qemu.start(load_board(board_name), image.qemu_images(), record=False, wait_connect=True)
    try:
        yield inst
    finally:
        inst.stop()


def _inputs(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 1, 49, 10)).astype(np.float32)


# --- build ------------------------------------------------------------------------


@needs_arm
@pytest.mark.parametrize("board_name", BOARDS)
def test_builds_and_links(board_name, firmware, kws):
    board = load_board(board_name)
    img = firmware(board_name)
    assert img.elf.is_file() and img.bin.is_file() and img.map_file.is_file()
    assert img.load_address == board.app_base
    assert img.model_hash == model_hash(kws.files)
    # sizes come from the linked ELF and respect the board's budgets
    assert 0 <= img.bin.stat().st_size - img.sizes.flash < 64  # the image is the flash sections (+ alignment gaps)
    assert img.flash_bytes <= board.app_flash_bytes
    assert img.peak_sram_bytes <= board.ram_kb * 1024 + board.build.stack_kb * 1024
    assert img.stack_bytes == board.build.stack_kb * 1024
    assert img.peak_sram_bytes >= kws.totals.arena_bytes + img.stack_bytes + 4 * (490 + 12)  # + the I/O tensors
    assert img.model_flash_bytes >= kws.totals.weight_bytes
    # the vector table: initial SP at the top of the stack reserve, Thumb reset handler in the image
    sp, reset = struct.unpack("<II", img.bin.read_bytes()[:8])
    stack = next(s for s in elf_sections(img.elf) if s.name == ".stack")
    assert reset & 1 and board.app_base <= (reset & ~1) < board.app_base + img.sizes.flash
    assert reset & ~1 == img.entry & ~1
    assert sp % 8 == 0 and stack.size == img.stack_bytes
    if board.emulated:
        assert img.boot_stub.read_bytes() == img.bin.read_bytes()[:8]
        assert img.qemu_images() == [(img.boot_stub, board.flash_base), (img.bin, board.app_base)]
    info = img.info
    assert info["model"] == "kws_dscnn" and info["board"] == board_name and info["layers"] == len(kws.layers)
    assert info["inputs"][0]["bytes"] == 1960 and info["outputs"][0]["bytes"] == 48
    assert info["counter"] == board.counter_unit


@needs_arm
def test_build_from_compile_folder(kws, tmp_path):
    img = build_firmware(kws.out_dir, load_board("qemu-m4"), tmp_path / "fw")
    assert img.model_hash == model_hash(kws.files)
    assert (tmp_path / "fw" / "firmware.json").is_file()


@needs_arm
def test_model_too_big_fails_at_link_time(kws, tmp_path, root):
    """A board is just a folder: a copy of qemu-m7 with a 64 KiB part refuses the model."""
    shutil.copytree(root / "boards" / "common", tmp_path / "boards" / "common")
    shutil.copytree(root / "boards" / "qemu-m7", tmp_path / "boards" / "qemu-m7")
    toml = tmp_path / "boards" / "qemu-m7" / "board.toml"
    toml.write_text(toml.read_text().replace("ram_kb = 512", "ram_kb = 64").replace("flash_kb = 2048", "flash_kb = 64"))
    small = load_board("qemu-m7", directory=tmp_path / "boards")
    with pytest.raises(BuildError, match=r"model too big for board qemu-m7: region FLASH overflowed by [\d,]+ bytes"
                       r"; region RAM overflowed by [\d,]+ bytes"):
        build_firmware(kws, small, tmp_path / "fw")
    assert not (tmp_path / "fw" / "firmware.elf").exists() and not (tmp_path / "fw" / "firmware.bin").exists()


@needs_arm
def test_bad_requests(kws, tmp_path):
    with pytest.raises(BuildError, match="unknown firmware harness"):
        build_firmware(kws, load_board("qemu-m7"), tmp_path, harness="tflm")
    with pytest.raises(BuildError, match="not an edgec build folder"):
        build_firmware(tmp_path, load_board("qemu-m7"), tmp_path / "fw")


# --- on the emulated boards ----------------------------------------------------------


@needs_qemu
@pytest.mark.parametrize("board_name", EMULATED)
def test_runs_bit_exact_on_qemu(board_name, firmware, host, kws):
    from edgec.device.link import BoardReplyError, Link

    img = firmware(board_name)
    n_layers = len(kws.layers)
    with booted(img, board_name) as inst:
        with Link(inst.url, timeout=2.0) as link:
            assert link.echo(b"ping\x00\xff") == b"ping\x00\xff"
            info = link.info()
            assert info == img.info  # the JSON, as built (several INFO chunks)
            with pytest.raises(BoardReplyError, match="wrong state"):
                link.invoke()  # no input yet
            for seed in (1, 2):
                x = _inputs(seed)
                link.write_input(0, x.tobytes())
                count = link.invoke()
                y = np.frombuffer(link.read_output(0, 48), np.float32).reshape(1, 12)
                assert np.array_equal(y, host.run([x])[0]), "board and host builds of the same C differ"
                profile = link.profile(n_layers)
                assert link.invoke() == count, "the same inference must count the same"
                assert link.profile(n_layers) == profile
                assert sum(profile) <= count < sum(profile) + 5000  # the layers are the inference
                assert all(p > 0 for p, L in zip(profile, kws.layers) if L.kind != "alias")
            assert count > kws.totals.macs  # at least one instruction per MAC for float C
            with pytest.raises(BoardReplyError, match="bad arguments"):
                link.read_output(1, 4)  # no second output
            with pytest.raises(BoardReplyError, match="bad arguments"):
                link.request(0x02, struct.pack("<BI", 0, 1958) + b"abc")  # past the input's end
            link.reset()
            with pytest.raises(BoardReplyError, match="wrong state"):
                link.invoke()


@needs_qemu
def test_protocol_edge_cases(firmware):
    """Retries are answered from memory, bad frames are dropped, unknown commands refused."""
    import serial

    from edgec.device.link import frame, unframe

    img = firmware("qemu-m7")
    with booted(img, "qemu-m7") as inst:
        port = serial.serial_for_url(inst.url, timeout=0.05)
        buf = bytearray()

        def reply(wait: float = 2.0) -> bytes | None:
            end = time.monotonic() + wait
            while time.monotonic() < end:
                k = buf.find(0)
                if k >= 0:
                    body = bytes(buf[:k])
                    del buf[: k + 1]
                    return unframe(body)
                buf.extend(port.read(64))
            return None

        try:
            port.write(frame(bytes([7, 0x07]) + b"first"))
            assert reply() == bytes([7, 0x87, 0]) + b"first"
            port.write(frame(bytes([7, 0x07]) + b"second"))  # same seq and cmd: a retry
            assert reply() == bytes([7, 0x87, 0]) + b"first", "a retry must get the remembered reply"
            bad = bytearray(frame(bytes([8, 0x07]) + b"x"))
            bad[2] ^= 0x01  # CRC no longer matches
            port.write(bytes(bad))
            assert reply(0.5) is None, "a corrupted frame must be dropped silently"
            port.write(bytes([0x41] * 700) + b"\x00")  # longer than any frame
            assert reply(0.5) is None
            port.write(frame(bytes([9, 0x55])))
            assert reply() == bytes([9, 0xD5, 1])  # unknown command
            port.write(frame(bytes([10, 0x07]) + bytes(510)))  # the echo would not fit one frame
            assert reply() == bytes([10, 0x87, 2])
            port.write(frame(bytes([11, 0x01]) + struct.pack("<H", 60000)))  # INFO offset past the end
            assert reply() == bytes([11, 0x81, 2])
            port.write(frame(bytes([12, 0x04]) + struct.pack("<BIH", 0, 0, 48)))  # READ_OUTPUT before INVOKE
            assert reply() == bytes([12, 0x84, 3])
        finally:
            port.close()


@needs_qemu
def test_counts_repeat_across_boots(firmware, kws):
    from edgec.device.link import Link

    img = firmware("qemu-m7")
    runs = []
    for _ in range(2):
        with booted(img, "qemu-m7") as inst, Link(inst.url) as link:
            link.write_input(0, _inputs(3).tobytes())
            runs.append((link.invoke(), link.profile(len(kws.layers))))
    assert runs[0] == runs[1]


@needs_qemu
def test_mlperf_tiny_mode(firmware, host):
    import serial

    img = firmware("qemu-m7", "mlperf")
    x = _inputs(4)
    with booted(img, "qemu-m7") as inst:
        port = serial.serial_for_url(inst.url, timeout=0.05)
        buf = bytearray()

        def command(text: str, wait: float = 20.0) -> list[str]:
            if text:
                port.write(text.encode())  # the runner sends the command and '%', no newline
            lines: list[str] = []
            end = time.monotonic() + wait
            while time.monotonic() < end:
                k = buf.find(b"\n")
                if k < 0:
                    buf.extend(port.read(256))
                    continue
                line = buf[:k].decode().rstrip("\r")
                del buf[: k + 1]
                lines.append(line)
                if line == "m-ready":
                    return lines
            raise AssertionError(f"no m-ready after {text!r}: {lines}")

        try:
            boot = command("")  # the reference firmware's start-up lines
            assert boot[0] == "m-timestamp-mode-performance" and boot[1].startswith("m-lap-us-")
            assert boot[2:] == ["m-init-done", "m-ready"]
            assert command("name%") == ["m-name-dut-[edgec-kws_dscnn]", "m-ready"]
            assert command("profile%") == ["m-profile-[ULPMark for tinyML Firmware V0.0.1]", "m-model-[kws01]", "m-ready"]
            assert command("infer 1 0%")[0].startswith("e-[Input db has 0 bytes")
            assert command("db load 1960%") == ["m-[Expecting 1960 bytes]", "m-ready"]
            data = x.tobytes()
            for i in range(0, len(data), 31):  # the runner's chunking (31 bytes without a power monitor)
                lines = command(f"db {data[i:i + 31].hex()}%")
            assert lines == ["m-load-done", "m-ready"]
            lines = command("infer 3 2%")
            assert lines[:3] == ["m-warmup-start-2", "m-warmup-done", "m-infer-start-3"]
            assert lines[3].startswith("m-lap-us-") and lines[4].startswith("m-lap-us-")
            assert lines[5:] == ["m-infer-done", lines[6], "m-ready"] and lines[6].startswith("m-results-[")
            t0, t1 = int(lines[3][9:]), int(lines[4][9:])
            per_inference_us = (t1 - t0) / 3  # virtual time: one instruction per ns at shift 0
            assert 1000 < per_inference_us < 200_000
            values = np.array([float(v) for v in lines[6][len("m-results-["):-1].split(",")], np.float32)
            assert np.array_equal(values, host.run([x])[0].ravel()), "results must read back to the exact floats"
            assert command("results%") == [lines[6], "m-ready"]
            stamp = command("timestamp%")
            assert stamp[0].startswith("m-lap-us-") and int(stamp[0][9:]) >= t1
            assert command("bogus 1%") == ["e-[Unknown command: bogus]", "m-ready"]
            assert command("db load 999999%")[0] == "e-[Supplied buffer size 999999 exceeds maximum of 1960]"
        finally:
            port.close()
