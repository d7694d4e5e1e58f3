"""A schedule for microcontrollers: keep every kernel's stack small.

TVM's legalized PrimFuncs materialize each stage (padding, the conv
accumulator, bias add, activation) as a full-size local buffer, which the C
backend turns into stack arrays (kilobytes per conv). Here injective stages
are inlined into their consumers and reductions are computed at the innermost
loop of their consumer, so intermediates shrink to a few scalars.
"""

from __future__ import annotations

from tvm import s_tir, tirx


def _try(fn, *args) -> bool:
    try:
        fn(*args)
        return True
    except Exception:  # noqa: BLE001 - TVM raises ScheduleError subclasses and TVMError
        return False


def _inline_all(sch: s_tir.Schedule) -> None:
    """Inline injective stages (forward, then into producers) to a fixpoint."""
    for inline in (sch.compute_inline, sch.reverse_compute_inline):
        progress = True
        while progress:
            progress = False
            for blk in sch.get_child_blocks(sch.get_sblock("root")):
                if _try(inline, blk):
                    progress = True
                    break


def _compute_at_consumers(sch: s_tir.Schedule) -> None:
    """Move each remaining producer under the deepest loop of its consumer."""
    progress = True
    while progress:
        progress = False
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
        for blk in blocks[:-1]:
            consumers = sch.get_consumers(blk)
            if len(consumers) != 1:
                continue
            for loop in reversed(sch.get_loops(consumers[0])):
                if _try(sch.compute_at, blk, loop):
                    progress = True
                    break
            if progress:
                break


def _decompose_reductions(sch: s_tir.Schedule) -> None:
    """Hoist reduction initialisation out of the reduction loops (no per-MAC branch)."""
    for blk in sch.get_child_blocks(sch.get_sblock("root")):
        block = sch.get(blk)
        if block.init is None:
            continue
        n_reduce = sum(1 for iv in block.iter_vars if int(iv.iter_type) == tirx.IterVar.CommReduce)
        loops = sch.get_loops(blk)
        if 0 < n_reduce <= len(loops):
            _try(sch.decompose_reduction, blk, loops[len(loops) - n_reduce])


def mcu_schedule(func: tirx.PrimFunc) -> tirx.PrimFunc:
    sch = s_tir.Schedule(func)
    _inline_all(sch)
    _compute_at_consumers(sch)
    _decompose_reductions(sch)
    return sch.mod["main"]
