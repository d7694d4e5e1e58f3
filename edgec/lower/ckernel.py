"""Layers lowered to hand-written kernels of runtime_c/ (int8 with DSP paths).

An op bundle's `c_kernel(ctx, node)` describes the call: the function, its
arguments as C expressions, the static parameter objects it needs (structs,
multiplier/shift arrays) and the runtime_c sources it links against. Tensor
pointers are placeholders (`ctx.input(i)`, `ctx.output()`, `ctx.scratch()`)
that codegen resolves against the memory plan, so op bundles never see the
arena layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from edgec.ir import Tensor

KERNELS_DIR = Path(__file__).resolve().parent.parent.parent / "runtime_c" / "kernels"
KERNELS_HEADER = "edgec_kernels_s8.h"


@dataclass
class StaticDecl:
    ctype: str  # "edgec_conv_params", "int32_t[]", ...
    name: str
    init: str  # C initializer, e.g. "{1, 2, 3}"
    align: int = 0  # bytes (arrays the kernels read by words), 0: the type's own


@dataclass
class CCall:
    function: str
    args: list[str]  # C expressions; tensor pointers as placeholders
    sources: tuple[str, ...]  # file names in runtime_c/kernels/
    scratch_bytes: int = 0
    reason: str = ""


@dataclass
class CKernelCtx:
    """What a c_kernel emitter sees: the node's tensors and a namespace for its statics."""

    prefix: str  # unique per layer, e.g. "edgec_kws_L3"
    inputs: Sequence[Tensor | None]
    outputs: Sequence[Tensor]
    dsp: bool = False  # the target has the Armv7E-M DSP extension (scratch-using fast paths)
    statics: list[StaticDecl] = field(default_factory=list)

    # -- tensor pointers (resolved by codegen) --
    def input(self, i: int) -> str:
        return f"@in{i}@"

    def output(self, i: int = 0) -> str:
        return f"@out{i}@"

    def scratch(self) -> str:
        return "@scratch@"

    # -- static parameter objects --
    def static(self, ctype: str, suffix: str, init: str, align: int = 0) -> str:
        name = f"{self.prefix}_{suffix}"
        self.statics.append(StaticDecl(ctype, name, init, align))
        return name

    def int_array(self, suffix: str, values, ctype: str = "int32_t", align: int = 0) -> str:
        """A const array of integers (the kernels' own copies of constants, e.g. pruned weights)."""
        vals = [int(v) for v in np.asarray(values).reshape(-1)]
        return self.static(f"{ctype}[{max(len(vals), 1)}]", suffix, "{" + ", ".join(map(str, vals or [0])) + "}", align)


def c_struct(**fields) -> str:
    """A designated initializer: c_struct(h=1, w=2) -> '{.h = 1, .w = 2}'."""
    return "{" + ", ".join(f".{k} = {v}" for k, v in fields.items()) + "}"


def hw(pair) -> str:
    return c_struct(h=int(pair[0]), w=int(pair[1]))


def dims(shape) -> str:
    """edgec_dims of an NHWC shape (lower ranks padded on the left with 1s)."""
    s = [1] * (4 - len(shape)) + [int(d) for d in shape]
    return c_struct(n=s[0], h=s[1], w=s[2], c=s[3])


def kernel_source_files(names: set[str]) -> dict[str, str]:
    """The runtime_c kernel sources (and every header they include) to ship with the model."""
    files = {}
    for n in sorted(names):
        files[n] = (KERNELS_DIR / n).read_text()
    files[KERNELS_HEADER] = (KERNELS_DIR / "include" / KERNELS_HEADER).read_text()
    for h in sorted(KERNELS_DIR.glob("*.h")):
        files[h.name] = h.read_text()
    return files
