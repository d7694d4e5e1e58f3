"""Static memory plan: every activation gets an offset in one arena.

Storage is planned per *buffer*, a set of tensors sharing bytes: an alias op
(Reshape, Flatten, ...) puts its output in its input's buffer, and an
elementwise op may write in place into an input buffer that dies at that op.
Graph inputs live in the caller's input arrays, graph outputs are written
straight into the caller's output arrays, constants live in flash. The rest is
placed by a greedy first-fit over lifetimes, largest first (the strategy of
TFLite Micro's GreedyMemoryPlanner), 16-byte aligned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgec.ir import Graph, Node
from edgec.ops.registry import lookup

ALIGN = 16


@dataclass
class Buffer:
    id: int
    kind: str  # "arena" | "input" | "output" | "const"
    size: int  # bytes
    tensors: list[str] = field(default_factory=list)
    start: int = 0  # first layer that writes it
    end: int = 0  # last layer that reads it
    offset: int = -1  # arena offset
    io_index: int = -1  # which input/output array


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    tensor_buffer: dict[str, int]
    arena_size: int
    inplace: dict[str, str]  # output tensor -> input tensor it overwrites
    scratch: dict[int, int] = field(default_factory=dict)  # layer index -> arena offset of its scratch

    def buffer_of(self, tensor: str) -> Buffer:
        return self.buffers[self.tensor_buffer[tensor]]

    def byte_offset(self, tensor: str) -> int:
        """Offset of `tensor` inside its buffer (always 0: aliases start at the base)."""
        return 0


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(g: Graph, scratch_bytes: dict[int, int] | None = None) -> MemoryPlan:
    """`scratch_bytes`: layer index -> bytes of scratch its kernel needs (live
    only during that layer, like CMSIS-NN's *_get_buffer_size buffers)."""
    buffers: list[Buffer] = []
    where: dict[str, int] = {}

    def new_buffer(kind: str, tensor: str, start: int, io_index: int = -1) -> int:
        b = Buffer(len(buffers), kind, g.tensor(tensor).nbytes, [tensor], start, start, io_index=io_index)
        buffers.append(b)
        where[tensor] = b.id
        return b.id

    for k, name in enumerate(g.inputs):
        new_buffer("input", name, -1, k)
    for t in g.constants():
        new_buffer("const", t.name, -1)
    out_index = output_roots(g)
    inplace: dict[str, str] = {}
    last_use: dict[str, int] = {}
    for i, n in enumerate(g.nodes):
        for t in _reads(n):
            last_use[t] = i
    for o in g.outputs:
        last_use[o] = len(g.nodes)

    for i, n in enumerate(g.nodes):
        d = lookup(n.op, n.domain)
        out = n.outputs[0]
        for t in _reads(n):
            if t in where:
                b = buffers[where[t]]
                b.end = max(b.end, i)
        if d is not None and d.alias:
            b = buffers[where[n.inputs[0]]]
            b.tensors.append(out)
            where[out] = b.id
            continue
        if out in out_index:
            new_buffer("output", out, i, out_index[out])
            continue
        target = _inplace_candidate(g, n, d, i, buffers, where, last_use)
        if target is not None:
            b = buffers[where[target]]
            b.tensors.append(out)
            b.end = max(b.end, i)
            where[out] = b.id
            inplace[out] = target
            continue
        new_buffer("arena", out, i)

    # a buffer's life ends at the last read of any tensor in it
    for b in buffers:
        for t in b.tensors:
            b.end = max(b.end, last_use.get(t, b.start))
    scratch_ids = {}
    for i, nbytes in sorted((scratch_bytes or {}).items()):
        if nbytes > 0:
            b = Buffer(len(buffers), "arena", nbytes, [], i, i)
            buffers.append(b)
            scratch_ids[i] = b.id
    arena = [b for b in buffers if b.kind == "arena"]
    size = _greedy_place(arena)
    return MemoryPlan(buffers, where, size, inplace, {i: buffers[k].offset for i, k in scratch_ids.items()})


def output_roots(g: Graph) -> dict[str, int]:
    """The tensor whose kernel really writes each graph output (following alias
    ops back) -> that output's index. After `insert_output_copies` the roots are
    distinct kernel outputs."""
    from edgec.passes.insert_output_copies import alias_root

    prod = g.producers()
    return {alias_root(g, o, prod): k for k, o in enumerate(g.outputs)}


def _reads(n: Node) -> list[str]:
    return [i for i in n.inputs if i]


def _inplace_candidate(g, n, d, i, buffers, where, last_use) -> str | None:
    if d is None or not d.inplace:
        return None
    out_bytes = g.tensor(n.outputs[0]).nbytes
    for k in d.inplace:
        if k >= len(n.inputs) or not n.inputs[k]:
            continue
        t = n.inputs[k]
        b = buffers[where[t]]
        if b.kind != "arena" or b.size != out_bytes or g.tensor(t).nbytes != out_bytes:
            continue
        # every tensor sharing the buffer must be dead after this node
        if all(last_use.get(x, -1) <= i for x in b.tensors) and n.inputs.count(t) == 1:
            return t
    return None


def _greedy_place(bufs: list[Buffer]) -> int:
    placed: list[Buffer] = []
    for b in sorted(bufs, key=lambda b: (-b.size, b.start, b.id)):
        live = sorted(
            (p for p in placed if not (p.end < b.start or b.end < p.start)),
            key=lambda p: p.offset,
        )
        off = 0
        for p in live:
            if off + b.size <= p.offset:
                break
            off = max(off, _align(p.offset + p.size))
        b.offset = off
        placed.append(b)
    return max((_align(b.offset + b.size) for b in bufs), default=0)
