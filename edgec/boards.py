"""Boards are data: `boards/<name>/board.toml` plus a linker script, startup
and platform code in the same folder (shared drivers in `boards/common/`).
Adding a board needs no Python change. The format is described in
docs/boards.md."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgec.errors import TargetError

COUNTER_KINDS = ("systick-icount", "dwt-cycles")
"""`[counter] kind`: SysTick under QEMU -icount (emulated instructions) or the DWT cycle counter."""

_DEFINE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class BoardBuild:
    """`[build]` of a board: what the firmware build compiles and links for it."""

    sources: tuple[Path, ...]  # board C sources (startup, drivers, platform.c), resolved
    defines: dict[str, str]  # extra preprocessor defines (values as C text)
    linker_script: Path  # the application's linker script (boards/<name>/app.ld)
    stack_kb: int  # stack reserved in RAM, counted in the RAM budget
    stack_region: str = "RAM"  # the memory region holding the stack (RAM, or an extra [layout.regions] one)
    cflags: tuple[str, ...] = ()  # extra compiler flags after the target's (e.g. the part's real -mfpu)


def boards_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "boards"


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    target: str
    kind: str  # "qemu" | "stm32"
    flash_kb: int
    ram_kb: int
    part: str
    layout: dict[str, int]
    console: dict[str, Any]
    clock_hz: int
    counter_kind: str
    counter_unit: str
    flash_method: str
    qemu: dict[str, Any] = field(default_factory=dict)
    path: Path = field(default=Path("."), compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    build: BoardBuild | None = field(default=None, compare=False)
    regions: dict[str, tuple[int, int]] = field(default_factory=dict)  # extra memories: name -> (base, bytes)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def emulated(self) -> bool:
        return self.kind == "qemu"

    @property
    def flash_base(self) -> int:
        return self.layout["flash_base"]

    @property
    def app_base(self) -> int:
        return self.layout["app_base"]

    @property
    def ram_base(self) -> int:
        return self.layout["ram_base"]

    @property
    def bootloader_bytes(self) -> int:
        return self.layout.get("bootloader_kb", 0) * 1024

    @property
    def app_flash_bytes(self) -> int:
        """Flash budget left to the application: the part's flash above the
        application base (the bootloader region below it is not the app's)."""
        return self.flash_kb * 1024 - (self.app_base - self.flash_base)

    @property
    def ram_bytes(self) -> int:
        return self.ram_kb * 1024

    @property
    def icount_shift(self) -> int:
        return int(self.qemu.get("icount_shift", 0))

    @property
    def counter_hz(self) -> int:
        """Counter units per second: cycles/s on hardware; on QEMU with
        -icount shift=N one instruction takes 2^N virtual ns: 10^9 / 2^N."""
        if self.counter_kind == "systick-icount":
            return 1_000_000_000 >> self.icount_shift
        return self.clock_hz

    @property
    def counter_ratio(self) -> tuple[int, int]:
        """Counter units per SysTick tick as a reduced fraction (MUL, DIV):
        instructions per tick = 10^9 / (2^N * f_systick) under -icount shift=N
        (40/1 on the 25 MHz MPS2 boards, 125/4 on the 32 MHz MPS3 AN547)."""
        if self.counter_kind != "systick-icount":
            return (1, 1)
        systick_hz = int(self.raw.get("clock", {}).get("systick_hz", self.clock_hz))
        num, den = 1_000_000_000, systick_hz << self.icount_shift
        g = math.gcd(num, den)
        return (num // g, den // g)


_REQUIRED = {
    "": ["name", "description", "target", "kind"],
    "memory": ["flash_kb", "ram_kb"],
    "layout": ["flash_base", "app_base", "ram_base"],
    "console": ["baud"],
    "clock": ["cpu_hz"],
    "counter": ["kind", "unit"],
    "flash": ["method"],
}


def load_board_file(path: Path) -> Board:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TargetError(f"malformed board file {path}: {e}") from None
    for section, keys in _REQUIRED.items():
        table = raw if not section else raw.get(section)
        if not isinstance(table, dict):
            raise TargetError(f"malformed board file {path}: section [{section}] is missing")
        for k in keys:
            if k not in table:
                raise TargetError(f"malformed board file {path}: field '{(section + '.') if section else ''}{k}' is missing")
    if raw["name"] != path.parent.name:
        raise TargetError(f"malformed board file {path}: name '{raw['name']}' does not match its folder")
    if raw["kind"] not in ("qemu", "stm32"):
        raise TargetError(f"malformed board file {path}: kind must be 'qemu' or 'stm32'")
    if raw["kind"] == "qemu" and "machine" not in raw.get("qemu", {}):
        raise TargetError(f"malformed board file {path}: field 'qemu.machine' is missing")
    if raw["counter"]["kind"] not in COUNTER_KINDS:
        raise TargetError(f"malformed board file {path}: counter.kind must be one of {', '.join(COUNTER_KINDS)}")
    if raw["kind"] == "qemu" and raw["counter"]["kind"] == "systick-icount":
        shift = raw["qemu"].get("icount_shift", 0)
        if not isinstance(shift, int) or not 0 <= shift <= 9:
            raise TargetError(f"malformed board file {path}: qemu.icount_shift must be an integer 0..9")
    layout_raw = dict(raw["layout"])
    regions_raw = layout_raw.pop("regions", {})
    try:
        layout = {k: int(v) for k, v in layout_raw.items()}
        regions = {str(n): (int(r["base"]), int(r["kb"]) * 1024) for n, r in regions_raw.items()}
    except (TypeError, ValueError, KeyError) as e:
        raise TargetError(f"malformed board file {path}: [layout] values must be integers ({e})") from None
    if layout["app_base"] < layout["flash_base"]:
        raise TargetError(f"malformed board file {path}: layout.app_base is below layout.flash_base")
    return Board(
        name=raw["name"],
        description=raw["description"],
        target=raw["target"],
        kind=raw["kind"],
        flash_kb=int(raw["memory"]["flash_kb"]),
        ram_kb=int(raw["memory"]["ram_kb"]),
        part=str(raw["memory"].get("part", "")),
        layout=layout,
        console=dict(raw["console"]),
        clock_hz=int(raw["clock"]["cpu_hz"]),
        counter_kind=raw["counter"]["kind"],
        counter_unit=raw["counter"]["unit"],
        flash_method=raw["flash"]["method"],
        qemu=dict(raw.get("qemu", {})),
        path=path,
        raw=raw,
        build=_load_build(path, raw.get("build")),
        regions=regions,
    )


def _load_build(path: Path, table: Any) -> BoardBuild | None:
    """The [build] table (None if absent: such a board can budget a compile but not build firmware)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise TargetError(f"malformed board file {path}: [build] must be a table")
    folder = path.parent

    def fail(msg: str) -> TargetError:
        return TargetError(f"malformed board file {path}: {msg}")

    sources = table.get("sources")
    if not isinstance(sources, list) or not sources or not all(isinstance(x, str) for x in sources):
        raise fail("build.sources must be a non-empty list of file names (relative to the board folder)")
    resolved = []
    for src in sources:
        p = (folder / src).resolve()
        if not p.is_file():
            raise fail(f"build.sources: {src} does not exist")
        resolved.append(p)
    script = folder / str(table.get("linker_script", "app.ld"))
    if not script.is_file():
        raise fail(f"build.linker_script: {script.name} does not exist")
    defines_raw = table.get("defines", {})
    if not isinstance(defines_raw, dict):
        raise fail("build.defines must be a table NAME = value")
    defines: dict[str, str] = {}
    for name, value in defines_raw.items():
        if not _DEFINE_NAME.match(name):
            raise fail(f"build.defines: invalid name {name!r}")
        if isinstance(value, bool):
            defines[name] = "1" if value else "0"
        elif isinstance(value, int):
            defines[name] = str(value)
        elif isinstance(value, str):
            defines[name] = value
        else:
            raise fail(f"build.defines.{name} must be an integer, boolean or string")
    stack_kb = table.get("stack_kb", 8)
    if not isinstance(stack_kb, int) or isinstance(stack_kb, bool) or stack_kb <= 0:
        raise fail("build.stack_kb must be a positive integer")
    cflags = table.get("cflags", [])
    if not isinstance(cflags, list) or not all(isinstance(f, str) and f.startswith("-") for f in cflags):
        raise fail("build.cflags must be a list of compiler flags")
    return BoardBuild(tuple(resolved), defines, script, stack_kb, str(table.get("stack_region", "RAM")), tuple(cflags))


def board_names(directory: Path | None = None) -> list[str]:
    d = directory or boards_dir()
    return sorted(p.parent.name for p in d.glob("*/board.toml"))


def list_boards(directory: Path | None = None) -> list[Board]:
    d = directory or boards_dir()
    return [load_board_file(d / n / "board.toml") for n in board_names(d)]


def load_board(name: str, directory: Path | None = None) -> Board:
    d = directory or boards_dir()
    p = d / name / "board.toml"
    if not p.exists():
        raise TargetError(f"unknown board '{name}'; known: {', '.join(board_names(d))}")
    return load_board_file(p)
