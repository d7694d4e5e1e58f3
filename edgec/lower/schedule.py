"""A schedule for microcontrollers: keep every kernel's stack small.

TVM's legalized PrimFuncs materialize each stage (padding, the conv
accumulator, bias add, activation) as a full-size local buffer, which the C
backend turns into stack arrays (kilobytes per conv). Here injective stages
are inlined into their consumers and reductions are computed inside the loop
nest of their consumer, so intermediates shrink to a few scalars.
"""

from __future__ import annotations

import tvm_ffi
from tvm import s_tir, tirx


def _try(fn, *args) -> bool:
    try:
        fn(*args)
        return True
    except Exception:  # noqa: BLE001 - TVM raises ScheduleError subclasses and TVMError
        return False


KEEP_PREFIX = "keep_"
"""Stages named keep_* are never inlined (only computed at their consumer): an
emitter marks a stage whose expression its consumer would otherwise copy
several times (e.g. the requantization chain of an int8 add)."""


def _inline_all(sch: s_tir.Schedule) -> None:
    """Inline injective stages (forward, then into producers) to a fixpoint."""
    for inline in (sch.compute_inline, sch.reverse_compute_inline):
        progress = True
        while progress:
            progress = False
            for blk in sch.get_child_blocks(sch.get_sblock("root")):
                if sch.get(blk).name_hint.startswith(KEEP_PREFIX):
                    continue
                if _try(inline, blk):
                    progress = True
                    break


def _vars_in(expr) -> list:
    found: list = []

    def collect(v):
        found.append(v)
        return tvm_ffi.WalkResult.ADVANCE

    tvm_ffi.structural_walk(expr, (tirx.Var, collect))
    return found


def _realize_of(func: tirx.PrimFunc, name: str):
    out: list = []

    def visit(realize):
        if realize.block.name_hint == name:
            out.append(realize)
        return tvm_ffi.WalkResult.ADVANCE

    tvm_ffi.structural_walk(func.body, (s_tir.SBlockRealize, visit))
    return out[0] if out else None


def _indexing_loop_vars(sch: s_tir.Schedule, producer, consumer) -> list:
    """Consumer loop variables that select which element of the producer's
    output the consumer reads. Computing the producer under a deeper loop than
    these would recompute it for every value of the loops that do not."""
    written = [w.source for w in sch.get(producer).writes]
    realize = _realize_of(sch.mod["main"], sch.get(consumer).name_hint)
    if realize is None:
        return []
    bindings = list(zip(realize.block.iter_vars, realize.iter_values))
    loop_vars: list = []
    for region in realize.block.reads:
        if not any(region.source.same_as(w) for w in written):
            continue
        for rng in region.region:
            for v in _vars_in(rng.min):
                for iv, value in bindings:
                    if iv.var.same_as(v):
                        loop_vars += _vars_in(value)
    return loop_vars


def _compute_at_consumers(sch: s_tir.Schedule) -> None:
    """Move each remaining producer under its consumer's loop nest: at the
    deepest loop that still indexes the producer's output (a conv accumulator
    goes under the innermost output loop; a row mean under the row loop)."""
    done: set[str] = set()
    progress = True
    while progress:
        progress = False
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
        for blk in blocks[:-1]:
            name = sch.get(blk).name_hint
            consumers = sch.get_consumers(blk)
            if name in done or len(consumers) != 1:
                continue
            done.add(name)
            loops = sch.get_loops(consumers[0])
            wanted = _indexing_loop_vars(sch, blk, consumers[0])
            depth = max((k for k, lp in enumerate(loops) if any(sch.get(lp).loop_var.same_as(v) for v in wanted)), default=len(loops) - 1)
            for loop in reversed(loops[: depth + 1]):
                if _try(sch.compute_at, blk, loop):
                    progress = True
                    break
            if progress:
                break


def _reduction_loop_vars(func: tirx.PrimFunc, block_name: str) -> list:
    """Loop variables bound to the reduction axes of the named block."""
    found: list = []

    def visit(realize):
        if realize.block.name_hint == block_name:
            for iv, value in zip(realize.block.iter_vars, realize.iter_values):
                if int(iv.iter_type) == tirx.IterVar.CommReduce:
                    found.append(value)
        return tvm_ffi.WalkResult.ADVANCE

    tvm_ffi.structural_walk(func.body, (s_tir.SBlockRealize, visit))
    names: list = []

    def collect(v):
        names.append(v)
        return tvm_ffi.WalkResult.ADVANCE

    for value in found:
        tvm_ffi.structural_walk(value, (tirx.Var, collect))
    return names


def _decompose_reductions(sch: s_tir.Schedule) -> None:
    """Hoist reduction initialisation out of the reduction loops (no per-MAC
    branch), at the outermost loop that runs over a reduction axis, so the
    accumulator stays one element per output point."""
    for blk in sch.get_child_blocks(sch.get_sblock("root")):
        block = sch.get(blk)
        if block.init is None:
            continue
        red_vars = _reduction_loop_vars(sch.mod["main"], block.name_hint)
        for loop in sch.get_loops(blk):
            if any(sch.get(loop).loop_var.same_as(v) for v in red_vars):
                _try(sch.decompose_reduction, blk, loop)
                break


def mcu_schedule(func: tirx.PrimFunc) -> tirx.PrimFunc:
    sch = s_tir.Schedule(func)
    _inline_all(sch)
    _compute_at_consumers(sch)
    _decompose_reductions(sch)
    return sch.mod["main"]
