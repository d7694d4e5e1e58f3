"""edgec's graph IR: tensors (shape, dtype, constant data) and nodes (op, attrs).

A Graph is treated as immutable by passes: a pass builds a new Graph (cheap:
tensors and nodes are shared where unchanged) rather than editing in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import numpy as np


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization, TFLite/ONNX style: real = scale * (q - zero_point).

    Per-tensor when `scale` has one element, per-channel along `axis` otherwise."""

    scale: np.ndarray  # float32, shape (1,) or (channels,)
    zero_point: np.ndarray  # int32, same shape as scale
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "float32", "int8", "int32", "int64", ...
    data: np.ndarray | None = field(default=None, compare=False, repr=False)
    quant: QuantParams | None = field(default=None, compare=False)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]  # "" marks an absent optional input
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict, compare=False)
    domain: str = ""

    def with_(self, **kw: Any) -> "Node":
        return replace(self, **kw)


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    nodes: list[Node]  # topologically ordered
    inputs: list[str]
    outputs: list[str]
    opset: int = 17

    # ---- queries -------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def is_const(self, name: str) -> bool:
        return bool(name) and self.tensors[name].is_const

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def constants(self) -> Iterable[Tensor]:
        return (t for t in self.tensors.values() if t.is_const)

    def fresh_name(self, base: str, taken: set[str] | dict | None = None) -> str:
        """`base`, or `base_2`, `base_3`, ... whichever no tensor uses yet."""
        used = self.tensors if taken is None else taken
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        return name

    # ---- rebuilding ----------------------------------------------------
    def with_nodes(self, nodes: list[Node], tensors: dict[str, Tensor] | None = None) -> "Graph":
        """A new graph with `nodes`, dropping tensors nothing refers to."""
        tensors = dict(self.tensors if tensors is None else tensors)
        used = set(self.inputs) | set(self.outputs)
        for n in nodes:
            for m in (n, *n.attrs.get("_epilogue", ())):  # fused activations keep their constants
                used.update(i for i in m.inputs if i)
            used.update(o for o in n.outputs if o)
        return Graph(
            name=self.name,
            tensors={k: v for k, v in tensors.items() if k in used},
            nodes=list(nodes),
            inputs=list(self.inputs),
            outputs=list(self.outputs),
            opset=self.opset,
        )

    def live_nodes(self) -> list[Node]:
        """Nodes that contribute to a graph output (dead-code elimination)."""
        prod = self.producers()
        needed: set[str] = set(self.outputs)
        keep: set[int] = set()
        stack = list(self.outputs)
        while stack:
            t = stack.pop()
            n = prod.get(t)
            if n is None or id(n) in keep:
                continue
            keep.add(id(n))
            for i in n.inputs:
                if i and i not in needed:
                    needed.add(i)
                    stack.append(i)
        return [n for n in self.nodes if id(n) in keep]
