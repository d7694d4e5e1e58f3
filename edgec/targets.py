"""Target definitions: one TOML file per target in the repository's `targets/`.

A target says which compiler and flags to use, what the core can do (FPU,
DSP, MVE) and the default flash/RAM budget. The file format is documented in
the comment header of every `targets/*.toml`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgec.errors import TargetError

FPU_KINDS = ("none", "sp", "dp")
"""Allowed values of `features.fpu`: soft float, single precision, single + double."""

HOST_ARCH = "host"
"""The `arch` value that marks the host (native gcc) target."""


@dataclass(frozen=True)
class Target:
    """One compilation target, loaded from `targets/<name>.toml`.

    The TOML tables are flattened: `features.fpu` -> `fpu`, `memory.flash_kb`
    -> `flash_kb`, and so on.
    """

    name: str
    description: str
    cpu: str
    arch: str
    compiler: str
    cflags: tuple[str, ...]
    pointer_bits: int
    fpu: str  # "none" | "sp" | "dp"
    dsp: bool
    mve: bool
    flash_kb: int
    ram_kb: int
    part: str = ""
    path: Path | None = field(default=None, compare=False, repr=False)

    @property
    def is_host(self) -> bool:
        """True for the host target (native gcc, used for validation/benchmarks)."""
        return self.arch == HOST_ARCH

    @property
    def has_fpu(self) -> bool:
        return self.fpu != "none"

    @property
    def flash_bytes(self) -> int:
        return self.flash_kb * 1024

    @property
    def ram_bytes(self) -> int:
        return self.ram_kb * 1024


def targets_dir() -> Path:
    """The repository's `targets/` directory."""
    return Path(__file__).resolve().parent.parent / "targets"


def _target_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise TargetError(f"target directory {directory} does not exist")
    return sorted(directory.glob("*.toml"))


def known_target_names(directory: Path | None = None) -> list[str]:
    """Names (file stems) of all target files, sorted. Does not parse them."""
    return [p.stem for p in _target_files(directory or targets_dir())]


def list_targets(directory: Path | None = None) -> list[Target]:
    """All targets, sorted by name. A malformed file raises TargetError."""
    return sorted(
        (load_target_file(p) for p in _target_files(directory or targets_dir())),
        key=lambda t: t.name,
    )


def load_target(name: str, directory: Path | None = None) -> Target:
    """Load the target called `name` (e.g. "cortex-m7").

    Raises TargetError for an unknown name (listing the known ones) or a
    malformed target file.
    """
    d = directory or targets_dir()
    path = d / f"{name}.toml"
    if "/" in name or "\\" in name or not path.is_file():
        known = ", ".join(known_target_names(d)) or "(none)"
        raise TargetError(f"unknown target '{name}'; known: {known}")
    return load_target_file(path)


# --- parsing -----------------------------------------------------------------

_TOP_KEYS = {"name", "description", "cpu", "arch", "compiler", "cflags", "pointer_bits", "features", "memory"}
_FEATURE_KEYS = {"fpu", "dsp", "mve"}
_MEMORY_KEYS = {"flash_kb", "ram_kb", "part"}


class _Reader:
    """Typed field access on one parsed TOML table, with file-naming errors."""

    def __init__(self, path: Path, table: dict[str, Any], prefix: str = ""):
        self.path = path
        self.table = table
        self.prefix = prefix

    def _where(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, msg: str) -> TargetError:
        return TargetError(f"malformed target file {self.path}: field '{self._where(key)}' {msg}")

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.table) - allowed)
        if unknown:
            raise TargetError(
                f"malformed target file {self.path}: unknown field(s) "
                + ", ".join(f"'{self._where(k)}'" for k in unknown)
                + f"; allowed: {', '.join(sorted(allowed))}"
            )

    def get(self, key: str, typ: type, *, default: Any = ...) -> Any:
        if key not in self.table:
            if default is not ...:
                return default
            raise self.fail(key, "is missing")
        value = self.table[key]
        # bool is a subclass of int: reject it where an int is wanted.
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise self.fail(key, f"must be {typ.__name__}, got {type(value).__name__} {value!r}")
        return value

    def string(self, key: str, *, default: Any = ...) -> str:
        value = self.get(key, str, default=default)
        if not value and default is ...:
            raise self.fail(key, "must not be empty")
        return value

    def positive_int(self, key: str) -> int:
        value = self.get(key, int)
        if value <= 0:
            raise self.fail(key, f"must be > 0, got {value}")
        return value

    def table_(self, key: str) -> _Reader:
        return _Reader(self.path, self.get(key, dict), prefix=f"{self.prefix}{key}.")


def load_target_file(path: Path) -> Target:
    """Parse and validate one target TOML file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise TargetError(f"cannot read target file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise TargetError(f"malformed target file {path}: invalid TOML: {e}") from None

    top = _Reader(path, raw)
    top.check_keys(_TOP_KEYS)
    name = top.string("name")
    if name != path.stem:
        raise top.fail("name", f"is '{name}' but must match the file name '{path.stem}'")

    cflags = top.get("cflags", list)
    if not all(isinstance(f, str) and f for f in cflags):
        raise top.fail("cflags", "must be a list of non-empty strings")

    pointer_bits = top.positive_int("pointer_bits")
    if pointer_bits not in (16, 32, 64):
        raise top.fail("pointer_bits", f"must be 16, 32 or 64, got {pointer_bits}")

    features = top.table_("features")
    features.check_keys(_FEATURE_KEYS)
    fpu = features.string("fpu")
    if fpu not in FPU_KINDS:
        raise features.fail("fpu", f"must be one of {', '.join(FPU_KINDS)}, got '{fpu}'")

    memory = top.table_("memory")
    memory.check_keys(_MEMORY_KEYS)

    return Target(
        name=name,
        description=top.string("description"),
        cpu=top.string("cpu"),
        arch=top.string("arch"),
        compiler=top.string("compiler"),
        cflags=tuple(cflags),
        pointer_bits=pointer_bits,
        fpu=fpu,
        dsp=features.get("dsp", bool),
        mve=features.get("mve", bool),
        flash_kb=memory.positive_int("flash_kb"),
        ram_kb=memory.positive_int("ram_kb"),
        part=memory.string("part", default=""),
        path=path,
    )
