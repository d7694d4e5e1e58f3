"""One op = one bundle: shape function, cost function, NumPy reference, kernel.

Each op file under `edgec/ops/` registers its bundles with `register()`; nothing
else in edgec switches on op names. The registry is filled once, at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from edgec.ir import Node, Tensor

if TYPE_CHECKING:  # pragma: no cover
    from edgec.lower.ckernel import CCall, CKernelCtx
    from edgec.lower.relax_emit import EmitCtx

Shape = tuple[int, ...]
ShapeFn = Callable[[Node, Sequence[Tensor | None]], list[tuple[Shape, str]]]
RefFn = Callable[[Node, Sequence[np.ndarray | None]], list[np.ndarray]]
MacsFn = Callable[[Node, Sequence[Tensor | None], Sequence[Tensor]], int]
CheckFn = Callable[[Node, Sequence[Tensor | None]], str | None]
EmitFn = Callable[["EmitCtx", Node, list[Any]], Any]
CKernelFn = Callable[["CKernelCtx", Node], "CCall"]


def _no_macs(node: Node, ins: Sequence[Tensor | None], outs: Sequence[Tensor]) -> int:
    return 0


def _elementwise_macs(node: Node, ins: Sequence[Tensor | None], outs: Sequence[Tensor]) -> int:
    return sum(o.size for o in outs)


@dataclass(frozen=True)
class OpDef:
    """Everything edgec knows about one ONNX op type."""

    op: str
    shape: ShapeFn
    reference: RefFn
    # Emits the op into a Relax function (kernel generated through TVM). None for
    # ops that never need a kernel (aliases) or are only constant-folded.
    relax: EmitFn | None = None
    macs: MacsFn = _no_macs
    # Inputs whose values must be known at compile time (shapes, axes, pads...);
    # they are read into the node and are not kernel arguments.
    static_inputs: tuple[int, ...] = ()
    # The output is input 0 reinterpreted (same bytes): no kernel, no copy.
    alias: bool = False
    # Inputs whose storage the output may reuse (elementwise, same size).
    inplace: tuple[int, ...] = ()
    # An elementwise unary op that can be fused into a producer as an epilogue.
    activation: bool = False
    # The result depends only on input shapes (Shape, Size): always folded.
    shape_only: bool = False
    # A hand-written kernel of runtime_c/ (int8, DSP): returns the C call, or None
    # when this instance is outside its cases (the Relax/TVM kernel takes over).
    c_kernel: CKernelFn | None = None
    # Constant tables the Relax emitter needs as extra kernel arguments (e.g.
    # per-channel requantization multipliers); they go to flash like weights.
    relax_consts: Callable[[Node, Sequence[Tensor | None]], list[np.ndarray]] | None = None
    # Returns a reason string when this particular node is unsupported.
    check: CheckFn | None = None
    domain: str = ""
    notes: str = ""


_REGISTRY: dict[tuple[str, str], OpDef] = {}


def register(*defs: OpDef) -> None:
    for d in defs:
        key = (d.domain, d.op)
        if key in _REGISTRY:
            raise RuntimeError(f"op {d.op} registered twice")
        _REGISTRY[key] = d


def lookup(op: str, domain: str = "") -> OpDef | None:
    _load_all()
    return _REGISTRY.get((domain if domain != "ai.onnx" else "", op))


def all_ops() -> list[OpDef]:
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda d: (d.domain, d.op))


_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    import edgec.ops as pkg

    for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if m.name not in ("registry", "common"):
            importlib.import_module(f"edgec.ops.{m.name}")


# ---- helpers shared by op files -------------------------------------------

def attr(node: Node, name: str, default: Any = None) -> Any:
    return node.attrs.get(name, default)


def broadcast_shape(*shapes: Shape) -> Shape:
    return tuple(np.broadcast_shapes(*shapes))


def same_shape(node: Node, ins: Sequence[Tensor | None]) -> list[tuple[Shape, str]]:
    return [(ins[0].shape, ins[0].dtype)]


def elementwise_macs() -> MacsFn:
    return _elementwise_macs


def const_value(t: Tensor | None, what: str) -> np.ndarray | None:
    if t is None:
        return None
    if t.data is None:
        from edgec.errors import ModelError

        raise ModelError(f"{what} must be a constant (got runtime tensor '{t.name}')")
    return t.data


__all__ = [
    "OpDef",
    "register",
    "lookup",
    "all_ops",
    "attr",
    "broadcast_shape",
    "same_shape",
    "elementwise_macs",
    "const_value",
]
