"""Emulated instructions per inference and MACs per instruction of each example
model on an emulated board (a report, never a test).

    .venv/bin/python bench/board.py [--board qemu-m7] [--json out.json]

Each model is compiled with firmware for the board, QEMU boots it directly
(the same firmware.bin the bootloader would flash, behind a boot stub), and the
firmware's counter (SysTick under -icount: exact, deterministic emulated
instructions) is read over the serial protocol: whole inference and per layer.
Also measures flash throughput over the serial bootloader for the first model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="qemu-m7")
    ap.add_argument("--json")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from edgec.boards import load_board
    from edgec.build.bootloader import build_bootloader
    from edgec.compiler import compile_model
    from edgec.device import qemu
    from edgec.device.flash import flash_image
    from edgec.device.link import Link
    from edgec.device.session import BuildFolder, run_on_board
    from edgec.errors import EdgecError

    board = load_board(args.board)
    rows = []
    flash_rate = None
    with tempfile.TemporaryDirectory() as tmp:
        for model in sorted((ROOT / "examples").glob("*.onnx")):
            out = Path(tmp) / model.stem
            try:
                r = compile_model(model, None, board=board, out_dir=out)
            except EdgecError as e:
                rows.append({"model": model.stem, "error": e.one_line()})
                continue
            bf = BuildFolder.open(out)
            inst = qemu.start(board, r.firmware.qemu_images(), record=False)
            try:
                with Link(inst.url, timeout=5) as link:
                    x = [np.random.default_rng(0).standard_normal(s).astype(np.float32) for s in bf.input_shapes()]
                    run_on_board(link, bf, x)  # warm-up
                    res = run_on_board(link, bf, x)
            finally:
                inst.stop()
            rows.append({
                "model": model.stem, "instructions": res.counter, "unit": res.counter_unit, "macs": r.totals.macs,
                "macs_per_instruction": r.totals.macs / res.counter, "flash_bytes": r.firmware.flash_bytes,
                "peak_sram_bytes": r.firmware.peak_sram_bytes,
            })
            if flash_rate is None:
                inst = qemu.start(board, [(build_bootloader(board, Path(tmp) / "bl"), None)], record=False)
                try:
                    image, fw = bf.firmware()
                    rep = flash_image(inst.url, image, fw["load_address"], board)
                    flash_rate = {"bytes": rep.bytes, "seconds": rep.seconds, "write_kb_per_s": rep.kb_per_s}
                finally:
                    inst.stop()
    console = Console(width=200)
    t = Table(title=f"edgec float models on {board.name} ({board.counter_unit})", title_justify="left")
    for col in ("model", "instructions / inference", "MACs", "MACs / instruction", "firmware flash B", "peak SRAM B"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for row in rows:
        if "error" in row:
            t.add_row(row["model"], row["error"], "", "", "", "")
            continue
        t.add_row(row["model"], f"{row['instructions']:,}", f"{row['macs']:,}", f"{row['macs_per_instruction']:.3f}",
                  f"{row['flash_bytes']:,}", f"{row['peak_sram_bytes']:,}")
    console.print(t)
    if flash_rate:
        console.print(f"flash over the serial bootloader: {flash_rate['bytes']:,} B in {flash_rate['seconds']:.2f} s, "
                      f"write {flash_rate['write_kb_per_s']:.1f} KB/s (with verify and GO)")
    if args.json:
        Path(args.json).write_text(json.dumps({"board": board.name, "rows": rows, "flash": flash_rate}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
