"""Compile time, flash and SRAM per example model (a report, never a test).

    .venv/bin/python bench/compile_time.py [--target cortex-m7] [--json out.json]

Compile time is wall time of `compile_model` (frontend, passes, TVM lowering of
every distinct kernel, C generation, arm-none-eabi-gcc build), measured after
TVM is imported (its import, ~5 s, is paid once per process and reported
separately). Sizes come from the built objects (pyelftools), stack from
-fstack-usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cortex-m7")
    ap.add_argument("--json", help="write the rows as JSON")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import tvm  # noqa: F401

    from rich.console import Console
    from rich.table import Table

    from edgec.compiler import compile_model

    import_s = time.perf_counter() - t0
    rows = []
    for model in sorted((ROOT / "examples").glob("*.onnx")):
        t = time.perf_counter()
        r = compile_model(model, args.target)
        wall = time.perf_counter() - t
        tt = r.totals
        rows.append({
            "model": model.stem,
            "compile_s": round(wall, 3),
            "lowering_s": round(r.timings.get("lowering_s", 0), 3),
            "build_s": round(r.timings.get("build_s", 0), 3),
            "layers": len(r.layers),
            "kernels": len(r.kernels.sources),
            "macs": tt.macs,
            "weight_bytes": tt.weight_bytes,
            "flash_bytes": tt.flash_bytes,
            "code_bytes": r.build.sizes.text,
            "arena_bytes": tt.arena_bytes,
            "max_stack_bytes": tt.max_stack_bytes,
            "peak_sram_bytes": tt.peak_sram_bytes,
        })
    console = Console(width=200)
    table = Table(title=f"edgec compile benchmark, target {args.target} (TVM import {import_s:.1f} s, paid once)", title_justify="left")
    cols = [("model", "model"), ("compile s", "compile_s"), ("TVM lowering s", "lowering_s"), ("gcc s", "build_s"),
            ("layers", "layers"), ("kernels", "kernels"), ("MACs", "macs"), ("weights B", "weight_bytes"),
            ("flash B", "flash_bytes"), ("code B", "code_bytes"), ("arena B", "arena_bytes"),
            ("stack B", "max_stack_bytes"), ("peak SRAM B", "peak_sram_bytes")]
    for title, _ in cols:
        table.add_column(title, justify="left" if title == "model" else "right")
    for row in rows:
        table.add_row(*[(f"{row[k]:,}" if isinstance(row[k], int) else str(row[k])) for _, k in cols])
    console.print(table)
    slow = [r["model"] for r in rows if r["compile_s"] >= 10]
    console.print(f"target: every example under 10 s -> {'met' if not slow else 'NOT met: ' + ', '.join(slow)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"target": args.target, "tvm_import_s": import_s, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
