"""Reports for people (rich tables) and machines (JSON)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from edgec.compiler import CompileResult


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:,.1f} KB"


def layer_rows(r: CompileResult) -> list[dict[str, Any]]:
    rows = []
    for L in r.layers:
        b = r.plan.buffer_of(L.output)
        rows.append({
            "index": L.index,
            "layer": L.name,
            "op": L.op,
            "output_shape": list(L.out_shape),
            "macs": L.macs,
            "params": L.params,
            "weight_bytes": L.weight_bytes,
            "activation_bytes": L.activation_bytes,
            "kernel": L.kernel,
            "kernel_source": {"tvm": "tvm", "alias": "none", "copy": "runtime_c", "runtime_c": "runtime_c"}[L.kind],
            "why": L.reason,
            "storage": b.kind,
            "arena_offset": b.offset if b.kind == "arena" else None,
        })
    return rows


def compile_report(r: CompileResult) -> dict[str, Any]:
    t = r.totals
    flash_limit = r.target.flash_kb * 1024
    ram_limit = r.target.ram_kb * 1024
    return {
        "model": r.graph.name,
        "target": r.target.name,
        "layers": layer_rows(r),
        "kernels": len(r.kernels.sources),
        "totals": {
            "macs": t.macs,
            "params": t.params,
            "weight_bytes": t.weight_bytes,
            "arena_bytes": t.arena_bytes,
            "flash_bytes": t.flash_bytes,
            "ram_bytes": t.ram_bytes,
            "max_stack_bytes": t.max_stack_bytes,
            "max_stack_function": t.max_stack_function,
            "peak_sram_bytes": t.peak_sram_bytes,
            "flash_budget_bytes": flash_limit,
            "ram_budget_bytes": ram_limit,
        },
        "sizes": (
            {"text": r.build.sizes.text, "rodata": r.build.sizes.rodata, "data": r.build.sizes.data, "bss": r.build.sizes.bss}
            if r.build else None
        ),
        "compile_seconds": {k: round(v, 3) for k, v in r.timings.items()},
        "output_dir": str(r.out_dir) if r.out_dir else None,
    }


def print_compile_report(r: CompileResult, console: Console) -> None:
    table = Table(title=f"{r.graph.name} on {r.target.name}", title_justify="left", show_lines=False)
    for col, just in (("#", "right"), ("layer", "left"), ("op", "left"), ("output", "left"), ("MACs", "right"),
                      ("params", "right"), ("weights", "right"), ("act.", "right"), ("kernel", "left")):
        table.add_column(col, justify=just, overflow="fold")
    for row in layer_rows(r):
        table.add_row(
            str(row["index"]), row["layer"], row["op"], "x".join(map(str, row["output_shape"])),
            f"{row['macs']:,}", f"{row['params']:,}", f"{row['weight_bytes']:,}", f"{row['activation_bytes']:,}",
            row["kernel_source"],
        )
    console.print(table)
    t = r.totals
    s = Table(show_header=False, box=None, padding=(0, 2))
    s.add_column(justify="left")
    s.add_column(justify="right")
    s.add_row("MACs", f"{t.macs:,}")
    s.add_row("parameters", f"{t.params:,}")
    n_rc = sum(1 for L in r.layers if L.kind == "runtime_c")
    s.add_row("kernels", f"{len(r.kernels.sources)} TVM-generated for {sum(1 for L in r.layers if L.kind == 'tvm')} layers"
              + (f", runtime_c for {n_rc} layers" if n_rc else ""))
    s.add_row("arena (activations)", f"{t.arena_bytes:,} B")
    if r.build:
        sz = r.build.sizes
        s.add_row("flash (text+rodata+data)", f"{t.flash_bytes:,} B  ({_kb(sz.text)} code, {_kb(sz.rodata)} const)  / {r.target.flash_kb:,} KB")
        s.add_row("largest stack", f"{t.max_stack_bytes:,} B  (run + {t.max_stack_function})")
        s.add_row("peak SRAM (data+bss+stack)", f"{t.peak_sram_bytes:,} B  / {r.target.ram_kb:,} KB")
    s.add_row("compile time", f"{r.timings.get('total_s', 0):.2f} s")
    if r.out_dir:
        s.add_row("written to", str(r.out_dir))
    console.print(s)


def print_validation(rep, console: Console) -> None:
    table = Table(title=f"{rep.model}: generated C (host) vs onnxruntime, {rep.runs} runs", title_justify="left")
    for col in ("output", "max abs err", "max rel err", "cosine", "result"):
        table.add_column(col, justify="left" if col in ("output", "result") else "right")
    for o in rep.outputs:
        ok = o.max_rel <= rep.tolerance
        table.add_row(o.name, f"{o.max_abs:.3e}", f"{o.max_rel:.3e}", f"{o.cosine:.9f}",
                      "[green]pass[/]" if ok else f"[red]FAIL[/] (> {rep.tolerance:g})")
    console.print(table)


def validation_json(rep) -> dict[str, Any]:
    return {
        "model": rep.model,
        "runs": rep.runs,
        "tolerance": rep.tolerance,
        "passed": rep.passed,
        "outputs": [o.__dict__ for o in rep.outputs],
    }


def dump_json(doc: dict[str, Any], dest: str, console: Console) -> None:
    text = json.dumps(doc, indent=2) + "\n"
    if dest == "-":
        print(text, end="")
    else:
        from pathlib import Path

        p = Path(dest)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(p)
