"""A tiny C emitter: the one place where edgec writes C text."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import numpy as np


class CWriter:
    def __init__(self) -> None:
        self._lines: list[str] = []
        self._indent = 0

    def line(self, text: str = "") -> None:
        self._lines.append(("    " * self._indent + text) if text else "")

    def lines(self, text: str) -> None:
        for t in text.splitlines():
            self._lines.append(t)

    def comment(self, text: str) -> None:
        for t in text.splitlines():
            self.line(f"/* {t} */" if t else "")

    @contextmanager
    def block(self, head: str, tail: str = "}") -> Iterator[None]:
        self.line(head + " {")
        self._indent += 1
        yield
        self._indent -= 1
        self.line(tail)

    def text(self) -> str:
        return "\n".join(self._lines).rstrip() + "\n"


def c_ident(name: str) -> str:
    s = re.sub(r"\W", "_", name)
    return s if s and not s[0].isdigit() else "t_" + s


_CTYPE = {"float32": "float", "int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t",
          "int32": "int32_t", "int64": "int64_t", "float64": "double"}


def c_type(dtype: str) -> str:
    return _CTYPE[dtype]


def c_array_body(arr: np.ndarray, per_line: int = 8) -> str:
    """Exact, deterministic literals: hex floats for float32 (round-trip exact)."""
    flat = arr.reshape(-1)
    if arr.dtype == np.float32:
        items = [c_float_literal(float(v)) for v in flat]
    elif arr.dtype == np.float64:
        items = [float(v).hex() for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    rows = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join("    " + r for r in rows)


def c_float_literal(v: float) -> str:
    """A float32 value as an exact C literal (hex float with f suffix; NAN, INFINITY)."""
    if v != v:
        return "NAN"
    if v in (float("inf"), float("-inf")):
        return "INFINITY" if v > 0 else "-INFINITY"
    return v.hex() + "f"
