"""Run generated C on the host: build it into a shared library with gcc and
call it through ctypes (as emlearn does), so tests and `edgec validate` compare
the C itself against references."""

from __future__ import annotations

import ctypes
import tempfile
from pathlib import Path

import numpy as np

from edgec.build import build_host_shared_library


class HostModel:
    def __init__(self, files: dict[str, str], name: str, input_shapes: list[tuple[int, ...]], output_shapes: list[tuple[int, ...]],
                 workdir: Path | None = None, input_dtypes: list[str] | None = None, output_dtypes: list[str] | None = None):
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="edgec-host-")
            workdir = Path(self._tmp.name)
        workdir.mkdir(parents=True, exist_ok=True)
        for fname, text in files.items():
            if fname.endswith((".c", ".h")):
                (workdir / fname).write_text(text)
        sources = sorted(workdir / f for f in files if f.endswith(".c"))
        lib = build_host_shared_library(sources, workdir / f"lib{name}.so", [workdir])
        self._lib = ctypes.CDLL(str(lib))
        self._fn = getattr(self._lib, f"edgec_{name}_run_v")
        self._fn.restype = ctypes.c_int
        self._fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.input_shapes = input_shapes
        self.output_shapes = output_shapes
        self.input_dtypes = input_dtypes or ["float32"] * len(input_shapes)
        self.output_dtypes = output_dtypes or ["float32"] * len(output_shapes)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        ins = [np.ascontiguousarray(x, dtype=dt).reshape(s) for x, s, dt in zip(inputs, self.input_shapes, self.input_dtypes)]
        outs = [np.zeros(s, dt) for s, dt in zip(self.output_shapes, self.output_dtypes)]
        in_ptrs = (ctypes.c_void_p * max(len(ins), 1))(*[x.ctypes.data for x in ins])
        out_ptrs = (ctypes.c_void_p * max(len(outs), 1))(*[y.ctypes.data for y in outs])
        rc = self._fn(in_ptrs, out_ptrs)
        if rc != 0:
            raise RuntimeError(f"model returned {rc}")
        return outs

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def host_model_for(result, workdir: Path | None = None) -> HostModel:
    """A HostModel from a CompileResult (compiled for any target: the C is portable)."""
    g = result.graph
    return HostModel(
        result.files,
        g.name,
        [g.tensor(t).shape for t in g.inputs],
        [g.tensor(t).shape for t in g.outputs],
        workdir,
        [g.tensor(t).dtype for t in g.inputs],
        [g.tensor(t).dtype for t in g.outputs],
    )
