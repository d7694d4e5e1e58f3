"""edgec's serial bootloader (runtime_c/bootloader/) on the emulated boards.

Boots the bootloader ELF in QEMU (qemu-m7, qemu-m4) with the console on a TCP
port (or a pty for stm32flash) and checks the STM32 USART bootloader protocol
(ST AN3155) byte by byte, with edgec's host client, and with Debian's
stm32flash. Every QEMU is stopped by its pid in the fixtures.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import subprocess
import time
import tty
from pathlib import Path

import pytest
import serial
from elftools.elf.elffile import ELFFile

from edgec.boards import board_names, load_board
from edgec.build.bootloader import build_bootloader, build_go_test_app, flash_geometry
from edgec.device import qemu
from edgec.device.stm32boot import ACK, NACK, BootloaderNack, Stm32Boot

# qemu-m55 stands for no STM32 part: generic 2 KiB pages and product ID 0x000.
EXPECTED_ID = {"qemu-m7": 0x451, "qemu-m4": 0x413, "qemu-m55": 0x000}
BOARDS = [n for n in EXPECTED_ID if n in board_names()]
EXPECTED_COMMANDS = (0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44)

needs_toolchain = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="arm-none-eabi-gcc / qemu-system-arm not installed (make setup)",
)
pytestmark = needs_toolchain


@pytest.fixture(scope="module", autouse=True)
def _state_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEC_STATE_DIR", str(tmp_path_factory.mktemp("qemu-state")))
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Bootloader and GO test app for every board: {name: (board, bootloader.elf, testapp.bin)}."""
    out = {}
    for name in BOARDS:
        b = load_board(name)
        d = tmp_path_factory.mktemp(f"bl-{name}")
        elf = build_bootloader(b, d)
        _, app_bin = build_go_test_app(b, d)
        out[name] = (b, elf, app_bin)
    return out


@pytest.fixture
def board(request, built):
    """A running QEMU with the bootloader: (Board, QemuInstance, testapp.bin)."""
    b, elf, app = built[getattr(request, "param", "qemu-m7")]
    inst = qemu.start(b, [(elf, None)], record=False)
    try:
        yield b, inst, app
    finally:
        inst.stop()


def _raw(url: str) -> serial.SerialBase:
    return serial.serial_for_url(url, timeout=2.0)


def _xor(data: bytes) -> int:
    x = 0
    for c in data:
        x ^= c
    return x


def _addr(a: int) -> bytes:
    b = a.to_bytes(4, "big")
    return b + bytes([_xor(b)])


# --- build ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BOARDS)
def test_bootloader_elf_is_linked_at_flash_base_within_its_budget(built, name):
    b, elf, _ = built[name]
    g = flash_geometry(b)
    with open(elf, "rb") as f:
        e = ELFFile(f)
        loads = [s for s in e.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"]]
        lo = min(s["p_paddr"] for s in loads)
        hi = max(s["p_paddr"] + s["p_filesz"] for s in loads)
        vectors = e.get_section_by_name(".vectors")
        assert vectors["sh_addr"] == b.layout["flash_base"]
    assert lo == b.layout["flash_base"]
    assert hi <= b.layout["flash_base"] + b.layout["bootloader_kb"] * 1024 <= b.layout["app_base"]
    assert f"#define BL_PRODUCT_ID {EXPECTED_ID[name]:#05x}u" in (elf.parent / "bl_config.h").read_text()
    assert g.product_id == EXPECTED_ID[name]


# --- protocol, byte by byte ----------------------------------------------------------------


@pytest.mark.parametrize("board", BOARDS, indirect=True)
def test_get_get_version_get_id(board):
    b, inst, _ = board
    with Stm32Boot.open(inst.url) as bl:
        bl.connect()
        info = bl.get()
        assert info.version == 0x31
        assert info.commands == EXPECTED_COMMANDS
        assert bl.get_version() == (0x31, 0x00, 0x00)
        assert bl.get_id() == EXPECTED_ID[b.name]


def test_an3155_bytes_exactly(board):
    _, inst, _ = board
    s = _raw(inst.url)
    try:
        s.write(b"\x7f")
        assert s.read(1) == bytes([ACK])
        s.write(b"\x00\xff")  # GET: ACK, N=7, version, 7 commands, ACK
        assert s.read(11) == bytes([ACK, 7, 0x31, *EXPECTED_COMMANDS, ACK])
        s.write(b"\x01\xfe")  # GET VERSION: ACK, version, option 1, option 2, ACK
        assert s.read(5) == bytes([ACK, 0x31, 0, 0, ACK])
        s.write(b"\x02\xfd")  # GET ID: ACK, N=1, PID MSB, PID LSB, ACK
        assert s.read(5) == bytes([ACK, 1, 0x04, 0x51, ACK])
        s.write(b"\x00\x00")  # wrong complement
        assert s.read(1) == bytes([NACK])
        s.write(b"\x43\xbc")  # legacy ERASE: not offered (exclusive with EXTENDED ERASE)
        assert s.read(1) == bytes([NACK])
        s.write(b"\x11\xee" + (0x08008000).to_bytes(4, "big") + b"\x00")  # bad address checksum
        assert s.read(2) == bytes([ACK, NACK])
        s.write(b"\x11\xee" + _addr(0x08008000) + b"\x0f\x0f")  # N with a bad complement
        assert s.read(3) == bytes([ACK, ACK, NACK])
        s.write(b"\x11\xee" + _addr(0x08000000) + b"\x03\xfc")  # read 4 bytes: SP of its own vectors
        got = s.read(7)
        assert got[:3] == bytes([ACK, ACK, ACK]) and len(got) == 7
        # EXTENDED ERASE of sector 1 (N=0, page 1, checksum), then bad checksum.
        s.write(b"\x44\xbb\x00\x00\x00\x01\x01")
        assert s.read(2) == bytes([ACK, ACK])
        s.write(b"\x44\xbb\x00\x00\x00\x01\x00")
        assert s.read(2) == bytes([ACK, NACK])
        # WRITE 4 bytes with a bad data checksum, then a good one.
        s.write(b"\x31\xce" + _addr(0x08008000) + b"\x03\x01\x02\x03\x04\x00")
        assert s.read(3) == bytes([ACK, ACK, NACK])
        s.write(b"\x31\xce" + _addr(0x08008000) + b"\x03\x01\x02\x03\x04" + bytes([3 ^ 1 ^ 2 ^ 3 ^ 4]))
        assert s.read(3) == bytes([ACK, ACK, ACK])
        s.write(b"\x11\xee" + _addr(0x08008000) + b"\x07\xf8")
        assert s.read(3 + 8) == bytes([ACK, ACK, ACK, 1, 2, 3, 4]) + b"\xff" * 4
        # A half-sent command is abandoned after the inter-byte timeout (NACK)
        # and the bootloader waits for the next command.
        s.write(b"\x31\xce" + _addr(0x08008000) + b"\x03\x01")
        assert s.read(3) == bytes([ACK, ACK, NACK])
        s.write(b"\x02\xfd")
        assert s.read(5) == bytes([ACK, 1, 0x04, 0x51, ACK])
        # A lone 0x7F (a host re-synchronising) is answered with ACK.
        s.write(b"\x7f")
        assert s.read(1) == bytes([ACK])
    finally:
        s.close()


@pytest.mark.parametrize("board", BOARDS, indirect=True)
def test_write_20k_then_read_back_equal(board):
    b, inst, _ = board
    g = flash_geometry(b)
    data = random.Random(b.name).randbytes(20 * 1024)
    wire = g.to_wire(b.layout["app_base"])
    assert wire == 0x08008000
    with Stm32Boot.open(inst.url) as bl:
        bl.connect()
        pages = g.pages_for(b.layout["app_base"], b.layout["app_base"] + len(data))
        bl.extended_erase(pages)
        assert bl.read_memory(wire, 64) == b"\xff" * 64  # erased
        bl.write_memory(wire, data)
        assert bl.read_memory(wire, len(data)) == data
        # Both views of flash hold the same bytes.
        assert bl.read_memory(b.layout["app_base"], 256) == data[:256]
        # A global erase clears the application region and nothing else.
        vectors = bl.read_memory(0x08000000, 64)
        bl.extended_erase(None)
        assert bl.read_memory(wire, 256) == b"\xff" * 256
        assert bl.read_memory(0x08000000, 64) == vectors
        assert bl.get_id() == EXPECTED_ID[b.name]


def test_bootloader_region_is_never_written_or_erased(board):
    b, inst, _ = board
    g = flash_geometry(b)
    s = _raw(inst.url)
    try:
        s.write(b"\x7f")
        assert s.read(1) == bytes([ACK])
        own = b"\x11\xee" + _addr(0x08000000) + b"\xff\x00"
        s.write(own)
        before = s.read(3 + 256)
        for target in (0x08000000, 0x08000100, 0x08007FFC, 0x00000000, 0x00004000):
            s.write(b"\x31\xce" + _addr(target))
            assert s.read(2) == bytes([ACK, NACK]), hex(target)
        # Beyond the flash budget, and straddling its end.
        s.write(b"\x31\xce" + _addr(0x08000000 + g.flash_size))
        assert s.read(2) == bytes([ACK, NACK])
        block = bytes(range(256))
        s.write(b"\x31\xce" + _addr(0x08000000 + g.flash_size - 128) + b"\xff" + block + bytes([0xFF ^ _xor(block)]))
        assert s.read(3) == bytes([ACK, ACK, NACK])
        # Unaligned flash writes.
        s.write(b"\x31\xce" + _addr(0x08008002))
        assert s.read(2) == bytes([ACK, NACK])
        # Erasing sector 0 (the bootloader), alone or in a list, and bank erases.
        s.write(b"\x44\xbb\x00\x00\x00\x00\x00")
        assert s.read(2) == bytes([ACK, NACK])
        s.write(b"\x44\xbb\x00\x01\x00\x01\x00\x00" + bytes([0 ^ 1 ^ 0 ^ 1 ^ 0 ^ 0]))
        assert s.read(2) == bytes([ACK, NACK])
        s.write(b"\x44\xbb\xff\xfe\x01")
        assert s.read(2) == bytes([ACK, NACK])
        s.write(b"\x44\xbb\x00\x00\x00\x63\x63")  # page 99 does not exist
        assert s.read(2) == bytes([ACK, NACK])
        s.write(own)
        assert s.read(3 + 256) == before
    finally:
        s.close()


def test_reads_outside_memory_are_refused(board):
    b, inst, _ = board
    g = flash_geometry(b)
    s = _raw(inst.url)
    try:
        s.write(b"\x7f")
        assert s.read(1) == bytes([ACK])
        for bad in (0x30000000, 0x40004000, 0xE000ED00, 0x08000000 + g.flash_size, g.ram_base + g.ram_size, 0xFFFFFFFC):
            s.write(b"\x11\xee" + _addr(bad))
            assert s.read(2) == bytes([ACK, NACK]), hex(bad)
        # Start inside, end outside: refused at the length.
        s.write(b"\x11\xee" + _addr(0x08000000 + g.flash_size - 16) + b"\xff\x00")
        assert s.read(3) == bytes([ACK, ACK, NACK])
        # RAM is readable.
        s.write(b"\x11\xee" + _addr(g.ram_base) + b"\x03\xfc")
        assert s.read(3 + 4)[:3] == bytes([ACK, ACK, ACK])
    finally:
        s.close()


@pytest.mark.parametrize("board", BOARDS, indirect=True)
def test_go_sets_vtor_and_msp_and_jumps_to_reset_handler(board):
    b, inst, app = board
    g = flash_geometry(b)
    image = app.read_bytes()
    wire = g.to_wire(b.layout["app_base"])
    with Stm32Boot.open(inst.url) as bl:
        bl.connect()
        bl.extended_erase(g.pages_for(g.app_base, g.app_base + len(image)))
        # GO into an erased region, into the bootloader, or unaligned: NACK.
        for bad in (wire, 0x08000000, wire + 4):
            with pytest.raises(BootloaderNack):
                bl.go(bad)
        bl.write_memory(wire, image)
        bl.go(wire)
        port = bl.port
        line = b""
        end = time.monotonic() + 5
        while not line.endswith(b"\n") and time.monotonic() < end:
            line += port.read(1)
    text = line.decode(errors="replace")
    assert text.startswith("EDGEC-TESTAPP"), text
    fields = dict(kv.split("=") for kv in text.split()[1:])
    assert int(fields["vtor"], 16) == b.layout["app_base"]
    sp_top = b.layout["ram_base"] + b.ram_kb * 1024  # the test app's initial MSP (its vector 0)
    assert sp_top - 64 <= int(fields["sp"], 16) <= sp_top


# --- Debian stm32flash, a client nobody here wrote ---------------------------------------


class _PtyHolder:
    """Keeps the pty's slave side open (raw) so QEMU sees it connected; reads
    what the board prints when nobody else is reading."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)

    def read(self, n: int, timeout: float) -> bytes:
        out = b""
        end = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < end:
            r, _, _ = select.select([self.fd], [], [], max(0.0, end - time.monotonic()))
            if r:
                out += os.read(self.fd, n - len(out))
        return out

    def sync(self, timeout: float = 10.0) -> None:
        """QEMU notices a pty client within about a second: knock until it answers."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            os.write(self.fd, b"\x7f")
            if self.read(1, 0.5):
                self.read(64, 0.6)  # drain a second answer, if two knocks got through
                return
        raise AssertionError("the bootloader did not answer on the pty")

    def close(self) -> None:
        os.close(self.fd)


@pytest.mark.skipif(shutil.which("stm32flash") is None, reason="Debian stm32flash not installed")
def test_debian_stm32flash_reads_id_writes_reads_back_and_goes(built, tmp_path):
    b, elf, app = built["qemu-m7"]
    inst = qemu.start(b, [(elf, None)], pty=True, record=False)
    holder = None
    try:
        holder = _PtyHolder(inst.url)
        holder.sync()

        def stm32flash(*args: str) -> subprocess.CompletedProcess:
            # -m 8n1: a pty has no parity (Linux clears PARENB; QEMU has no UART line).
            return subprocess.run(["stm32flash", "-m", "8n1", *args, inst.url], capture_output=True,
                                  text=True, timeout=60)

        p = stm32flash()
        assert p.returncode == 0, p.stderr
        assert "Device ID    : 0x0451 (STM32F76xxx/77xxx)" in p.stdout
        assert "Version      : 0x31" in p.stdout

        img = tmp_path / "img.bin"
        img.write_bytes(random.Random(7).randbytes(20 * 1024))
        p = stm32flash("-w", str(img), "-v", "-S", "0x08008000")
        assert p.returncode == 0, p.stderr
        assert "Wrote and verified address 0x0800d000 (100.00%) Done." in p.stdout

        back = tmp_path / "back.bin"
        p = stm32flash("-r", str(back), "-S", "0x08008000:20480")
        assert p.returncode == 0, p.stderr
        assert back.read_bytes() == img.read_bytes()

        # Writing over the bootloader is refused (stm32flash reports the failure).
        p = stm32flash("-w", str(img), "-S", "0x08000000:20480")
        assert p.returncode != 0
        assert "Failed to erase memory" in p.stdout + p.stderr

        p = stm32flash("-w", str(app), "-v", "-S", "0x08008000", "-g", "0x08008000")
        assert p.returncode == 0, p.stderr
        assert "Starting execution at address 0x08008000... done." in p.stdout
        # The app's banner races with stm32flash flushing the tty input when it
        # exits; ask the app instead (it echoes in upper case).
        reply = b""
        end = time.monotonic() + 5
        while b"EDGEC" not in reply and time.monotonic() < end:
            os.write(holder.fd, b"edgec")
            reply += holder.read(64, 0.3)
        assert b"EDGEC" in reply, reply
    finally:
        if holder:
            holder.close()
        inst.stop()
