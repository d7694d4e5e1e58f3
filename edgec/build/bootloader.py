"""Build edgec's serial bootloader (runtime_c/bootloader/) for an emulated board.

The bootloader speaks the STM32 USART bootloader protocol (ST AN3155), so one
host flasher (`edgec.device.stm32boot` / `edgec.device.flash`) serves real
STM32 parts (their ROM bootloader) and the emulated boards (this bootloader).

Everything board specific comes from the board TOML and from `flash_geometry`:
the flash budget and sector layout of the part the board stands for, the
product ID the bootloader answers to GET ID, where the application starts,
how much RAM the bootloader keeps for itself. They are written into a
generated `bl_config.h` and a linker script from `runtime_c/bootloader/link.ld.in`.

A board may describe its part explicitly with an optional `[bootloader]` table:

    [bootloader]
    product_id = 0x451                 # answer to GET ID
    sectors_kb = [[4, 32], [1, 128], [7, 256]]   # runs of [count, size KiB]
    ram_reserved_kb = 16               # RAM kept by the bootloader at ram_base

Without it the part name (`[memory] part`) is looked up in `KNOWN_PARTS`, and
an unknown part gets uniform 2 KiB pages and product ID 0x000 (edgec's flasher
works, stm32flash would not know the device).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgec.boards import Board
from edgec.build.toolchain import compile_objects
from edgec.errors import BuildError
from edgec.targets import load_target

__all__ = [
    "BYTE_TIMEOUT_MS",
    "KNOWN_PARTS",
    "STM32_FLASH_ALIAS",
    "FlashGeometry",
    "PartInfo",
    "bootloader_dir",
    "build_bootloader",
    "build_go_test_app",
    "flash_geometry",
]

STM32_FLASH_ALIAS = 0x08000000
"""Where STM32 parts (and stm32flash's device table) put flash. The bootloader
maps this window onto the board's flash, so host tools use STM32 addresses."""

BYTE_TIMEOUT_MS = 3
"""Bootloader inter-byte timeout, in board milliseconds (SysTick). Under QEMU
with -icount shift=0 a board millisecond is 1 M emulated instructions; a
polling loop runs them in roughly 10-20 ms of host time, so this is about
0.2-0.4 s of host time (measured; see docs/bootloader.md). A command whose
next byte does not come within it is abandoned with a NACK."""

_KIB = 1024


@dataclass(frozen=True)
class PartInfo:
    """What the bootloader needs to know about the STM32 part a board stands for."""

    product_id: int
    name: str  # as in AN2606 / stm32flash's device table
    sectors_kb: tuple[tuple[int, int], ...]  # runs of (count, size KiB), from flash start
    ram_reserved_kb: int  # RAM used by the ROM bootloader of the real part (from 0x20000000)
    write_unit: int = 4  # flash is programmed in units of this many bytes (H7: 256-bit words)


# Sector layouts from the reference manuals (RM0410 single-bank, RM0090);
# product IDs and bootloader RAM from AN2606 (as in stm32flash's table).
KNOWN_PARTS: dict[str, PartInfo] = {
    "STM32F76": PartInfo(0x451, "STM32F76xxx/77xxx", ((4, 32), (1, 128), (7, 256)), 16),
    "STM32F77": PartInfo(0x451, "STM32F76xxx/77xxx", ((4, 32), (1, 128), (7, 256)), 16),
    "STM32F74": PartInfo(0x449, "STM32F74xxx/75xxx", ((4, 32), (1, 128), (3, 256)), 16),
    "STM32F75": PartInfo(0x449, "STM32F74xxx/75xxx", ((4, 32), (1, 128), (3, 256)), 16),
    "STM32F40": PartInfo(0x413, "STM32F40xxx/41xxx", ((4, 16), (1, 64), (7, 128)), 12),
    "STM32F41": PartInfo(0x413, "STM32F40xxx/41xxx", ((4, 16), (1, 64), (7, 128)), 12),
    # Two banks of 8 x 128 KiB; the ROM bootloader numbers the sectors 0..15.
    "STM32H74": PartInfo(0x450, "STM32H74xxx/75xxx", ((16, 128),), 17, write_unit=32),
    "STM32H75": PartInfo(0x450, "STM32H74xxx/75xxx", ((16, 128),), 17, write_unit=32),
}
GENERIC_PART = PartInfo(0x000, "generic (uniform 2 KiB pages)", ((1 << 16, 2),), 16)


@dataclass(frozen=True)
class FlashGeometry:
    """The memory map the bootloader and the flasher agree on (byte addresses)."""

    board: str
    part: PartInfo
    flash_base: int  # native address of flash (QEMU: code RAM)
    flash_size: int  # the budget of the part (board [memory] flash_kb)
    app_base: int
    bootloader_size: int
    sectors: tuple[tuple[int, int], ...]  # (offset from flash_base, size), up to flash_size
    ram_base: int
    ram_size: int  # budget (board [memory] ram_kb)
    ram_phys_size: int  # what the emulator has (layout ram_size_kb), bounds a GO stack pointer
    ram_reserved: int
    alias_base: int = STM32_FLASH_ALIAS

    @property
    def product_id(self) -> int:
        return self.part.product_id

    @property
    def flash_end(self) -> int:
        return self.flash_base + self.flash_size

    @property
    def app_size(self) -> int:
        """Bytes available to the application: app_base up to the end of the flash budget."""
        return self.flash_end - self.app_base

    def to_wire(self, addr: int) -> int:
        """A native flash address in the STM32 view (0x08000000 + offset); others unchanged."""
        if self.flash_base <= addr <= self.flash_end:
            return self.alias_base + (addr - self.flash_base)
        return addr

    def to_native(self, addr: int) -> int:
        if self.alias_base <= addr <= self.alias_base + self.flash_size:
            return self.flash_base + (addr - self.alias_base)
        return addr

    def pages_for(self, start: int, end: int) -> list[int]:
        """Indices of the sectors overlapping native [start, end)."""
        out = []
        for i, (off, size) in enumerate(self.sectors):
            lo, hi = self.flash_base + off, self.flash_base + off + size
            if lo < end and start < hi:
                out.append(i)
        return out

    def page_range(self, index: int) -> tuple[int, int]:
        off, size = self.sectors[index]
        return self.flash_base + off, self.flash_base + off + size


def _part_for(board: Board) -> PartInfo:
    spec = board.raw.get("bootloader")
    if isinstance(spec, dict) and spec:
        try:
            runs = tuple((int(c), int(s)) for c, s in spec["sectors_kb"]) if "sectors_kb" in spec else GENERIC_PART.sectors_kb
            return PartInfo(
                product_id=int(spec.get("product_id", 0)),
                name=str(spec.get("name", board.part or board.name)),
                sectors_kb=runs,
                ram_reserved_kb=int(spec.get("ram_reserved_kb", GENERIC_PART.ram_reserved_kb)),
                write_unit=int(spec.get("write_unit", 4)),
            )
        except (TypeError, ValueError, KeyError) as e:
            raise BuildError(f"board {board.name}: malformed [bootloader] table in {board.path}: {e}") from None
    part = (board.part or "").upper()
    for prefix, info in KNOWN_PARTS.items():
        if part.startswith(prefix):
            return info
    return GENERIC_PART


def flash_geometry(board: Board) -> FlashGeometry:
    """The bootloader / flasher memory map of `board`, checked for consistency.

    Raises BuildError (one line, with the numbers) when the board layout and the
    part's sectors disagree: the application must start on a sector boundary
    after the bootloader, and everything must fit the flash budget.
    """
    lay = board.layout
    try:
        flash_base, app_base, ram_base = lay["flash_base"], lay["app_base"], lay["ram_base"]
    except KeyError as e:
        raise BuildError(f"board {board.name}: [layout] {e.args[0]} is missing") from None
    part = _part_for(board)
    flash_size = board.flash_kb * _KIB
    bl_size = int(lay.get("bootloader_kb", 0)) * _KIB
    sectors: list[tuple[int, int]] = []
    off = 0
    for count, size_kb in part.sectors_kb:
        for _ in range(count):
            if off >= flash_size:
                break
            sectors.append((off, size_kb * _KIB))
            off += size_kb * _KIB
    if off != flash_size:
        raise BuildError(
            f"board {board.name}: the sectors of {part.name} do not end at the flash budget "
            f"({flash_size // _KIB} KiB; sectors cover {off // _KIB} KiB)"
        )
    boundaries = {o for o, _ in sectors}
    app_off = app_base - flash_base
    if not 0 <= app_off < flash_size:
        raise BuildError(
            f"board {board.name}: app_base {app_base:#x} is not inside flash "
            f"{flash_base:#x}..{flash_base + flash_size:#x}"
        )
    if app_off not in boundaries:
        raise BuildError(f"board {board.name}: app_base {app_base:#x} is not on a sector boundary of {part.name}")
    # Emulated boards carry edgec's bootloader in the first sectors; real parts
    # boot their ROM bootloader from system memory, so app_base may be flash_base.
    if board.emulated and (bl_size <= 0 or bl_size > app_off):
        raise BuildError(
            f"board {board.name}: bootloader_kb = {bl_size // _KIB} must be > 0 and fit below app_base "
            f"({app_off // _KIB} KiB)"
        )
    if flash_base != STM32_FLASH_ALIAS and flash_base < STM32_FLASH_ALIAS + flash_size and STM32_FLASH_ALIAS < flash_base + flash_size:
        raise BuildError(f"board {board.name}: flash {flash_base:#x} overlaps the STM32 flash window {STM32_FLASH_ALIAS:#x}")
    ram_size = board.ram_kb * _KIB
    ram_phys = int(lay.get("ram_size_kb", board.ram_kb)) * _KIB
    reserved = part.ram_reserved_kb * _KIB
    if reserved >= ram_size:
        raise BuildError(f"board {board.name}: RAM budget {board.ram_kb} KiB is not above the bootloader's {part.ram_reserved_kb} KiB")
    return FlashGeometry(
        board=board.name,
        part=part,
        flash_base=flash_base,
        flash_size=flash_size,
        app_base=app_base,
        bootloader_size=bl_size,
        sectors=tuple(sectors),
        ram_base=ram_base,
        ram_size=ram_size,
        ram_phys_size=max(ram_phys, ram_size),
        ram_reserved=reserved,
    )


# --- building ------------------------------------------------------------------


def _root() -> Path:
    return Path(__file__).resolve().parent.parent.parent


def bootloader_dir() -> Path:
    return _root() / "runtime_c" / "bootloader"


def _uart(board: Board) -> tuple[Path, str, int]:
    kind = str(board.console.get("uart", ""))
    src = _root() / "boards" / "common" / f"{kind}_uart.c"
    if not kind or not src.is_file():
        raise BuildError(f"board {board.name}: no UART driver boards/common/{kind or '<none>'}_uart.c for the bootloader")
    if "uart_base" not in board.console:
        raise BuildError(f"board {board.name}: [console] uart_base is missing")
    return src, f"edgec_{kind}_uart_init", int(board.console["uart_base"])


def _config_header(g: FlashGeometry, board: Board) -> str:
    runs = []
    for off, size in g.sectors:
        if runs and runs[-1][1] == size:
            runs[-1][0] += 1
        else:
            runs.append([1, size])
    runs_c = ", ".join(f"{{{c}u, {s:#x}u}}" for c, s in runs)
    return f"""/* Generated by edgec/build/bootloader.py for board {board.name}; do not edit. */
#ifndef BL_CONFIG_H
#define BL_CONFIG_H
#define BL_FLASH_BASE {g.flash_base:#010x}u
#define BL_FLASH_SIZE {g.flash_size:#x}u /* budget of {board.part or board.name} */
#define BL_ALIAS_BASE {g.alias_base:#010x}u /* STM32 view of flash */
#define BL_APP_BASE {g.app_base:#010x}u
#define BL_RAM_BASE {g.ram_base:#010x}u
#define BL_RAM_SIZE {g.ram_size:#x}u
#define BL_RAM_PHYS_SIZE {g.ram_phys_size:#x}u
#define BL_RAM_RESERVED {g.ram_reserved:#x}u
#define BL_PRODUCT_ID {g.product_id:#05x}u /* {g.part.name} */
#define BL_NUM_SECTORS {len(g.sectors)}u
#define BL_SECTOR_RUNS {{{runs_c}}}
#define BL_CPU_HZ {board.clock_hz}u
#define BL_BYTE_TIMEOUT_MS {BYTE_TIMEOUT_MS}u
#endif
"""


def _fill_template(text: str, fields: dict[str, str]) -> str:
    for k, v in fields.items():
        text = text.replace(f"@{k}@", v)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise BuildError(f"linker script template has unfilled fields: {', '.join(sorted(set(left)))}")
    return text


def _link_flags(target_cflags: tuple[str, ...]) -> list[str]:
    return [f for f in target_cflags if f.startswith(("-mcpu=", "-mthumb", "-mfloat-abi=", "-mfpu=", "-march="))]


def _run(cmd: list[str], log: Path) -> None:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=300, check=False)
    except FileNotFoundError:
        raise BuildError(f"{cmd[0]} not found; run `make setup`") from None
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {subprocess.list2cmdline(cmd)}\n{proc.stdout}{proc.stderr}[exit {proc.returncode}]\n\n")
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "error" in ln.lower() and not ln.startswith("collect2")), lines[0] if lines else "")
        raise BuildError(f"{Path(cmd[0]).name} failed: {first} (full log: {log})")


def _build(board: Board, out_dir: Path, *, name: str, sources: list[Path], origin: int, length: int,
           ram_origin: int, ram_length: int, extra_defines: dict[str, str] | None = None) -> Path:
    target = load_target(board.target)
    if target.is_host:
        raise BuildError(f"board {board.name}: target {target.name} is not a microcontroller")
    g = flash_geometry(board)
    uart_src, uart_init, uart_base = _uart(board)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bl_config.h").write_text(_config_header(g, board), encoding="utf-8")
    ld = out_dir / f"{name}.ld"
    ld.write_text(
        _fill_template(
            (bootloader_dir() / "link.ld.in").read_text(encoding="utf-8"),
            {
                "FLASH_ORIGIN": f"{origin:#010x}",
                "FLASH_LENGTH": f"{length:#x}",
                "RAM_ORIGIN": f"{ram_origin:#010x}",
                "RAM_LENGTH": f"{ram_length:#x}",
                "MIN_STACK": "2048",
            },
        ),
        encoding="utf-8",
    )
    defines = {
        "EDGEC_UART_BASE": f"{uart_base:#x}u",
        "EDGEC_CPU_HZ": f"{board.clock_hz}u",
        "EDGEC_BAUD": f"{int(board.console.get('baud', 115200))}u",
        "BL_UART_INIT": uart_init,
        **(extra_defines or {}),
    }
    res = compile_objects(
        [*sources, uart_src],
        target,
        out_dir / f"{name}_obj",
        include_dirs=[out_dir, _root() / "runtime_c" / "include", bootloader_dir()],
        defines=defines,
        extra_cflags=["-ffreestanding", "-Wextra"],
    )
    gcc = shutil.which(target.compiler)
    if gcc is None:
        raise BuildError(f"{target.compiler} not found; run `make setup`")
    elf = out_dir / f"{name}.elf"
    elf.unlink(missing_ok=True)
    log = out_dir / f"{name}.link.log"
    log.write_text("", encoding="utf-8")
    _run([gcc, *_link_flags(target.cflags), "-nostdlib", "-nostartfiles", "-Wl,--gc-sections",
          f"-Wl,-Map={out_dir / (name + '.map')}", "-T", str(ld), *map(str, res.objects),
          "-Wl,--start-group", "-lc", "-lgcc", "-Wl,--end-group", "-o", str(elf)], log)
    objcopy = shutil.which(target.compiler.replace("gcc", "objcopy")) or shutil.which("arm-none-eabi-objcopy")
    if objcopy:
        _run([objcopy, "-O", "binary", str(elf), str(elf.with_suffix(".bin"))], log)
    return elf


def build_bootloader(board: Board, out_dir: Path) -> Path:
    """Build the bootloader ELF for `board` into `out_dir`; returns the ELF path.

    The ELF is linked at the board's flash_base within bootloader_kb (the
    linker refuses a bigger one) with its RAM at ram_base (the part's
    bootloader-reserved RAM). Boot it with QEMU's -kernel.
    """
    if not board.emulated:
        raise BuildError(
            f"board {board.name} is a real board: it is flashed through the part's ROM bootloader, "
            "edgec's bootloader is for emulated boards"
        )
    g = flash_geometry(board)
    d = bootloader_dir()
    return _build(board, out_dir, name="bootloader", sources=[d / "bootloader.c", d / "startup.c"],
                  origin=g.flash_base, length=g.bootloader_size, ram_origin=g.ram_base, ram_length=g.ram_reserved)


def build_go_test_app(board: Board, out_dir: Path) -> tuple[Path, Path]:
    """A tiny application at app_base for testing GO (see runtime_c/bootloader/testapp/).

    It prints `EDGEC-TESTAPP vtor=0x... sp=0x...` and then echoes input in
    upper case. Returns (ELF, raw binary starting at app_base).
    """
    g = flash_geometry(board)
    d = bootloader_dir()
    elf = _build(board, out_dir, name="testapp", sources=[d / "testapp" / "testapp.c", d / "startup.c"],
                 origin=g.app_base, length=g.app_size, ram_origin=g.ram_base, ram_length=g.ram_size,
                 extra_defines={"BL_STARTUP_KEEP_VTOR": "1"})
    return elf, elf.with_suffix(".bin")
