"""Boards are data: `boards/<name>/board.toml` plus a linker script, startup
and platform code in the same folder (shared drivers in `boards/common/`).
Adding a board needs no Python change."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgec.errors import TargetError


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

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def emulated(self) -> bool:
        return self.kind == "qemu"


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
    return Board(
        name=raw["name"],
        description=raw["description"],
        target=raw["target"],
        kind=raw["kind"],
        flash_kb=int(raw["memory"]["flash_kb"]),
        ram_kb=int(raw["memory"]["ram_kb"]),
        part=str(raw["memory"].get("part", "")),
        layout={k: int(v) for k, v in raw["layout"].items()},
        console=dict(raw["console"]),
        clock_hz=int(raw["clock"]["cpu_hz"]),
        counter_kind=raw["counter"]["kind"],
        counter_unit=raw["counter"]["unit"],
        flash_method=raw["flash"]["method"],
        qemu=dict(raw.get("qemu", {})),
        path=path,
        raw=raw,
    )


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
