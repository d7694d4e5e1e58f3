"""Boards are data: every boards/<name>/board.toml loads, is consistent with
itself and with its part, and turns into the linker memory map and defines the
firmware build uses. No toolchain or emulator needed here (tests/test_firmware.py
builds and boots)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from edgec.boards import COUNTER_KINDS, board_names, list_boards, load_board
from edgec.build.firmware import _memory_ld, board_defines
from edgec.errors import TargetError
from edgec.targets import load_target

EXPECTED = {"qemu-m7", "qemu-m4", "qemu-m55", "nucleo-f767zi", "nucleo-h743zi", "disco-f746ng"}
EMULATED = ("qemu-m7", "qemu-m4", "qemu-m55")
REAL = ("nucleo-f767zi", "nucleo-h743zi", "disco-f746ng")


def test_all_boards_present_and_loadable():
    assert EXPECTED <= set(board_names())
    for b in list_boards():
        assert b.build is not None, f"{b.name} has no [build] section"
        assert load_target(b.target).name == b.target
        assert b.counter_kind in COUNTER_KINDS
        assert b.build.linker_script.is_file()
        assert all(p.is_file() for p in b.build.sources)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layout_is_consistent(name):
    b = load_board(name)
    assert b.app_base % 1024 == 0, "VTOR needs a 1 KiB aligned vector table"
    assert b.app_base - b.flash_base == b.bootloader_bytes
    assert b.app_flash_bytes == b.flash_kb * 1024 - b.bootloader_bytes
    assert b.flash_kb <= b.layout["flash_size_kb"], "the budget cannot exceed the memory that exists"
    assert b.ram_kb <= b.layout["ram_size_kb"]
    for src in b.build.sources:
        assert src.suffix == ".c"


@pytest.mark.parametrize("name", EMULATED)
def test_emulated_boards_leave_32k_for_the_bootloader(name):
    b = load_board(name)
    assert b.emulated and b.qemu["machine"]
    assert b.bootloader_bytes == 32 * 1024
    assert b.counter_kind == "systick-icount" and b.counter_unit == "instructions (emulated)"


def test_counter_conversion():
    """instructions per SysTick tick = 1e9 / (2^shift * f_systick): measured 40 on the
    25 MHz MPS2 boards and 31.25 on the 32 MHz AN547 (docs/boards.md)."""
    assert load_board("qemu-m7").counter_ratio == (40, 1)
    assert load_board("qemu-m4").counter_ratio == (40, 1)
    assert load_board("qemu-m55").counter_ratio == (125, 4)
    assert load_board("qemu-m7").counter_hz == 1_000_000_000
    f767 = load_board("nucleo-f767zi")
    assert f767.counter_kind == "dwt-cycles" and f767.counter_hz == 216_000_000 and f767.counter_ratio == (1, 1)
    assert load_board("nucleo-h743zi").counter_hz == 400_000_000


def test_qemu_m55_memory_map():
    b = load_board("qemu-m55")
    assert (b.flash_base, b.app_base, b.ram_base) == (0x10000000, 0x10008000, 0x30000000)
    assert b.console["uart_base"] in (0x49303000, 0x59303000)
    assert b.clock_hz == 32_000_000


@pytest.mark.parametrize("name", REAL)
def test_real_boards(name):
    b = load_board(name)
    assert b.kind == "stm32" and not b.emulated
    assert b.flash_base == b.app_base == 0x08000000, "the ROM bootloader/probe writes the image at the start of flash"
    assert b.flash_method == "stm32-serial"
    assert "pyocd" in b.raw["flash"]["alternatives"] and b.raw["flash"]["pyocd_target"]
    assert b.raw["flash"]["rom_bootloader_usarts"]
    assert b.counter_kind == "dwt-cycles" and b.counter_unit == "cycles"
    assert b.build.defines.get("EDGEC_DWT_UNLOCK") == "1", "Cortex-M7: DWT must be unlocked"
    # The baud divisor from the USART kernel clock is within 1 % (the UART tolerates ~3 %).
    clk, baud = b.console["clock_hz"], b.console["baud"]
    brr = (clk + baud // 2) // baud
    assert abs(clk / brr - baud) / baud < 0.01
    assert 16 <= brr <= 0xFFFF


def test_part_facts():
    f767, h743, f746 = load_board("nucleo-f767zi"), load_board("nucleo-h743zi"), load_board("disco-f746ng")
    assert (f767.flash_kb, f767.ram_kb, f767.ram_base, f767.clock_hz) == (2048, 512, 0x20000000, 216_000_000)
    assert f767.console["uart_base"] == 0x40004800  # USART3 on PD8/PD9
    assert (h743.flash_kb, h743.ram_base, h743.clock_hz) == (2048, 0x24000000, 400_000_000)
    assert h743.regions["DTCM"] == (0x20000000, 128 * 1024) and h743.build.stack_region == "DTCM"
    assert (f746.flash_kb, f746.ram_kb, f746.clock_hz) == (1024, 320, 216_000_000)
    assert f746.console["uart_base"] == 0x40011000  # USART1 on PA9/PB7
    assert "-mfpu=fpv5-sp-d16" in f746.build.cflags  # the F746's FPU is single precision


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_memory_ld_from_toml(name):
    b = load_board(name)
    text = _memory_ld(b)
    pattern = r"^\s+(\w+)\s*\(\w+\) : ORIGIN = (0x[0-9a-f]+), LENGTH = (0x[0-9a-f]+)"
    found = {m[0]: (int(m[1], 16), int(m[2], 16)) for m in re.findall(pattern, text, re.M)}
    assert found["FLASH"] == (b.app_base, b.app_flash_bytes)
    assert found["RAM"] == (b.ram_base, b.ram_kb * 1024)
    assert f'REGION_ALIAS("STACK_RAM", {b.build.stack_region})' in text
    assert f"__edgec_stack_size = {b.build.stack_kb * 1024};" in text


def test_defines_from_toml():
    d = board_defines(load_board("qemu-m55"))
    assert d["EDGEC_COUNTER_MUL"] == "125u" and d["EDGEC_COUNTER_DIV"] == "4u"
    assert d["EDGEC_UART_BASE"] == "0x59303000u" and d["EDGEC_CPU_HZ"] == "32000000u"
    d = board_defines(load_board("nucleo-f767zi"))
    assert d["EDGEC_UART_CLK_HZ"] == "54000000u" and d["EDGEC_COUNTER_HZ"] == "216000000u"


def _copy_board(tmp_path: Path, root: Path, name: str) -> Path:
    shutil.copytree(root / "boards" / "common", tmp_path / "common")
    shutil.copytree(root / "boards" / name, tmp_path / name)
    return tmp_path / name / "board.toml"


def test_new_board_is_just_a_folder(tmp_path, root):
    toml = _copy_board(tmp_path, root, "qemu-m7")
    toml.write_text(toml.read_text().replace("ram_kb = 512", "ram_kb = 96"))
    b = load_board("qemu-m7", directory=tmp_path)
    assert b.ram_kb == 96 and b.folder == tmp_path / "qemu-m7"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.replace('"platform.c",', '"missing.c",'), "missing.c does not exist"),
        (lambda s: s.replace('kind = "systick-icount"', 'kind = "sundial"'), "counter.kind"),
        (lambda s: s.replace("icount_shift = 0", "icount_shift = 12"), "icount_shift"),
        (lambda s: s.replace("stack_kb = 8", "stack_kb = -1"), "stack_kb"),
        (lambda s: s.replace("flash_base = 0x00000000", "flash_base = 0x00010000"), "app_base is below"),
        (lambda s: s.replace('name = "qemu-m7"', 'name = "other"'), "does not match its folder"),
    ],
)
def test_malformed_board_files(tmp_path, root, edit, message):
    toml = _copy_board(tmp_path, root, "qemu-m7")
    toml.write_text(edit(toml.read_text()))
    with pytest.raises(TargetError, match=message):
        load_board("qemu-m7", directory=tmp_path)


def test_unknown_board():
    with pytest.raises(TargetError, match="unknown board 'nope'; known: .*qemu-m7"):
        load_board("nope")
