"""MLPerf Tiny int8 models on the emulated boards: exact emulated instructions
per inference, MACs per instruction, peak SRAM and flash, beside TFLite Micro
(+ CMSIS-NN) and the targets of the int8 issue. A report, never a test.

    .venv/bin/python bench/int8.py [--boards qemu-m7,qemu-m4] [--models kws,vww,resnet,ad01,str_ww]
                                   [--portable] [--json out.json]

For each model and board:

- compile with `--board` (edgec's int8 C calling runtime_c kernels), then build
  the bench firmware: the normal serial-protocol firmware without per-layer
  profiling hooks (layer_profile=False), so the count is the model alone;
- boot it in QEMU (7.2, -icount shift=0) with the TCG plugin
  bench/qemu_plugin/insn_count.c (built here with host gcc) given the entry
  addresses of `edgec_bench_begin` / `edgec_bench_end` from the ELF: the
  firmware calls them right around the run call of every INVOKE;
- write a random int8 input (WRITE_INPUT, outside the counted window), INVOKE
  once as a warm-up, INVOKE again: the plugin's count for that second window is
  the number; the firmware's own SysTick-under-icount counter is read too, as a
  cross-check; the output is compared bit for bit with the host build of the same
  C and with TFLite Micro;
- sizes from the compile (arena, worst-case stack from gcc's call graph, I/O
  tensors) and from the linked ELF (flash of the model's objects and of the whole
  firmware after --gc-sections; the firmware's .data + .bss);
- TFLite Micro's arena for the same model from the tflite-micro Python package
  (RecordingMicroAllocator via print_allocations(); a 64-bit host build, so
  pointers and structs are larger than on a Cortex-M) and the host time of LiteRT
  (default kernels, no delegate, one thread, mean over runs).

The TFLite Micro + CMSIS-NN figures on qemu-m7 and the targets are the issue's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from edgec.resources import mlperf_models_dir  # noqa: E402

MODELS_DIR = mlperf_models_dir()
PLUGIN_SRC = ROOT / "bench" / "qemu_plugin" / "insn_count.c"

MODELS = {  # short name -> (file stem, MLPerf Tiny id)
    "kws": ("kws_ref_model", "kws01"),
    "vww": ("vww_96_int8", "vww01"),
    "resnet": ("pretrainedResnet_quant", "ic01"),
    "ad01": ("ad01_int8", "ad01"),
    "str_ww": ("str_ww_ref_model", "sww01"),
}

# TFLite Micro with CMSIS-NN on qemu-m7 (the figures): instructions per
# inference, MACs per instruction, arena bytes
TFLM = {
    "kws": {"instructions": 7_650_000, "macs_per_instruction": 0.35, "arena": 22_820},
    "vww": {"instructions": 24_000_000, "macs_per_instruction": 0.31, "arena": 100_708},
    "resnet": {"instructions": 30_000_000, "macs_per_instruction": 0.42, "arena": 54_996},
    "ad01": {"instructions": 580_000, "macs_per_instruction": 0.45, "arena": 2_580},
}
TARGET_SPEEDUP = 2.0  # >= 2x fewer instructions than TFLM + CMSIS-NN
TARGET_MACS_PER_INSTR = {"resnet": 0.8, "vww": 0.8}
TARGET_FLASH_SLACK = 30 * 1024  # flash <= weights + 30 KB


# --- the plugin and QEMU ------------------------------------------------------------


def build_plugin(out_dir: Path) -> Path:
    so = out_dir / "libinsn_count.so"
    cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-o", str(so), str(PLUGIN_SRC)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"building the QEMU plugin failed:\n{proc.stderr}")
    return so


def marker_addresses(elf: Path) -> tuple[int, int]:
    from elftools.elf.elffile import ELFFile

    want = {"edgec_bench_begin": None, "edgec_bench_end": None}
    with elf.open("rb") as f:
        for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if s.name in want:
                want[s.name] = int(s["st_value"]) & ~1  # Thumb bit
    if None in want.values():
        raise SystemExit(f"{elf}: no edgec_bench_begin/end markers (firmware older than the bench?)")
    return want["edgec_bench_begin"], want["edgec_bench_end"]


class CountingBoard:
    """QEMU for an emulated board with the insn_count plugin between the markers."""

    def __init__(self, board, image, plugin: Path, work: Path):
        from edgec.device import qemu

        self.log = work / f"qemu-{board.name}-{time.monotonic_ns()}.log"
        start, stop = marker_addresses(image.elf)
        port = qemu.free_port()
        cmd = qemu.qemu_command(board, image.qemu_images(), f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on", self.log)
        cmd += ["-plugin", f"{plugin},start={start:#x},stop={stop:#x}", "-d", "plugin"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not qemu._listening(port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.poll() is not None else ""
                self.close()
                raise SystemExit(f"QEMU with the plugin did not start: {out.strip()[-500:]}")
            time.sleep(0.05)
        self.url = f"socket://127.0.0.1:{port}"

    def windows(self, n: int, timeout: float = 10.0) -> list[int]:
        """The instruction counts of the first n windows the plugin logged."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            counts = [int(m.group(2)) for m in re.finditer(r"insn_count: window (\d+) insns (\d+)", text)]
            if len(counts) >= n or time.monotonic() > deadline:
                return counts
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- references on the host -----------------------------------------------------------


def tflm_arena(path: Path) -> int | None:
    """TFLite Micro's arena for the model (RecordingMicroAllocator, printed to stderr by
    print_allocations(): run in a child process to capture it)."""
    code = (
        "import numpy as np, sys\n"
        "from tflite_micro.python.tflite_micro import runtime\n"
        f"it = runtime.Interpreter.from_file({str(path)!r})\n"
        "d = it.get_input_details(0)\n"
        "it.set_input(np.zeros(d['shape'], d['dtype']), 0)\n"
        "it.invoke()\n"
        "it.print_allocations()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    m = re.search(r"Arena allocation total (\d+) bytes", proc.stdout + proc.stderr)
    return int(m.group(1)) if m else None


def litert_host_us(path: Path, min_runs: int = 20, min_seconds: float = 0.5) -> float:
    """Mean host time of one inference with LiteRT's default kernels (no delegate, one thread)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.random.default_rng(0).integers(-128, 128, size=d["shape"], dtype=np.int8))
    for _ in range(3):
        it.invoke()
    n, t0 = 0, time.perf_counter()
    while n < min_runs or time.perf_counter() - t0 < min_seconds:
        it.invoke()
        n += 1
    return (time.perf_counter() - t0) / n * 1e6


def tflm_output(path: Path, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_file(str(path))
    it.set_input(x, 0)
    it.invoke()
    return np.asarray(it.get_output(0))


# --- one model on one board -------------------------------------------------------------


def measure(short: str, board_name: str, work: Path, plugin: Path, portable: bool, hosts: dict) -> dict:
    from edgec.boards import load_board
    from edgec.build.firmware import build_firmware
    from edgec.compiler import compile_model
    from edgec.device.link import Link
    from edgec.device.session import BuildFolder, random_inputs, run_on_board

    stem, _ = MODELS[short]
    path = MODELS_DIR / f"{stem}.tflite"
    board = load_board(board_name)
    t0 = time.perf_counter()
    out = work / f"{short}-{board_name}"
    r = compile_model(path, None, board=board, out_dir=out)
    compile_s = time.perf_counter() - t0
    bf = BuildFolder.open(out)
    x = random_inputs(bf, np.random.default_rng(2024))
    if short not in hosts:
        host = bf.host_model()
        hosts[short] = host.run(x)[0]
        host.close()
    want_host = hosts[short]
    want_tflm = np.ascontiguousarray(tflm_output(path, x[0]), np.int8)

    def run(image) -> dict:
        cb = CountingBoard(board, image, plugin, work)
        try:
            with Link(cb.url, timeout=5) as link:
                info = link.info()
                warm = run_on_board(link, bf, x, info)  # warm-up: window 0
                res = run_on_board(link, bf, x, info)  # counted: window 1 (the input was written before it opened)
            counts = cb.windows(2)
        finally:
            cb.close()
        if len(counts) < 2:
            raise SystemExit(f"{short} on {board_name}: the plugin logged {len(counts)} windows, expected 2 ({cb.log})")
        y = res.outputs[0]
        return {"instructions": counts[1], "warmup_instructions": counts[0], "systick_counter": res.counter,
                "systick_warmup": warm.counter,
                "bit_exact_host": y.tobytes() == want_host.tobytes(), "bit_exact_tflm": y.tobytes() == want_tflm.tobytes()}

    img = build_firmware(r, board, out / "bench-fw", layer_profile=False)
    m = run(img)
    row = {
        "model": short, "file": path.name, "board": board_name, "target": board.target,
        "macs": r.totals.macs, **m,
        "macs_per_instruction": r.totals.macs / m["instructions"],
        "weights_bytes": r.totals.weight_bytes,
        "arena_bytes": r.totals.arena_bytes,
        "stack_bytes": r.totals.max_stack_bytes,
        "stack_chain": r.totals.max_stack_function,
        "io_bytes": sum(int(t["bytes"]) for t in img.info["inputs"] + img.info["outputs"]),
        "flash_model_bytes": img.model_flash_bytes,
        "flash_firmware_bytes": img.flash_bytes,
        "firmware_sram_bytes": img.peak_sram_bytes,
        "firmware_stack_reserve_bytes": img.stack_bytes,
        "compile_s": round(compile_s, 2),
        "kernels": img.options["kernels"],
    }
    row["peak_sram_bytes"] = row["arena_bytes"] + row["io_bytes"] + (row["stack_bytes"] or 0)
    if portable and img.options["kernels"] == "dsp":
        p = run(build_firmware(r, board, out / "bench-fw-portable", layer_profile=False, portable_kernels=True))
        row["portable_instructions"] = p["instructions"]
        row["portable_bit_exact"] = p["bit_exact_host"] and p["bit_exact_tflm"]
    return row


def targets(row: dict) -> dict:
    """The issue's targets for one measured row (instructions and MACs/instr against
    TFLM + CMSIS-NN on qemu-m7)."""
    t = TFLM.get(row["model"])
    if t is None:
        return {}
    out = {
        "speedup_vs_tflm": t["instructions"] / row["instructions"],
        "speedup_ok": t["instructions"] / row["instructions"] >= TARGET_SPEEDUP,
        "sram_vs_tflm_arena": row["peak_sram_bytes"] / t["arena"],
        "sram_ok": row["peak_sram_bytes"] < t["arena"],
        "flash_budget": row["weights_bytes"] + TARGET_FLASH_SLACK,
        "flash_model_ok": row["flash_model_bytes"] <= row["weights_bytes"] + TARGET_FLASH_SLACK,
        "flash_firmware_ok": row["flash_firmware_bytes"] <= row["weights_bytes"] + TARGET_FLASH_SLACK,
    }
    if row["model"] in TARGET_MACS_PER_INSTR:
        out["macs_per_instruction_target"] = TARGET_MACS_PER_INSTR[row["model"]]
        out["macs_per_instruction_ok"] = row["macs_per_instruction"] >= TARGET_MACS_PER_INSTR[row["model"]]
    return out


def markdown(rows: list[dict], portable: bool) -> str:
    """The measured rows as Markdown tables (speed, memory, targets)."""
    yes = {True: "yes", False: "**no**"}
    out = ["| model | board | MACs | instructions | MACs/instr | "
           + ("portable C kernels | " if portable else "") + "vs TFLM+CMSIS-NN (m7) | bit-exact (host, TFLM) | LiteRT host |",
           "|---|---|--:|--:|--:|" + ("--:|" if portable else "") + "--:|:-:|--:|"]
    for r in rows:
        f = TFLM.get(r["model"])
        pi = r.get("portable_instructions")
        out.append(f"| {r['model']} | {r['board']} | {r['macs']:,} | {r['instructions']:,} | {r['macs_per_instruction']:.3f} | "
                   + (f"{pi:,} ({pi / r['instructions']:.2f}x) | " if portable else "")
                   + (f"{f['instructions'] / r['instructions']:.3f}x fewer" if f else "-")
                   + f" | {yes[r['bit_exact_host'] and r['bit_exact_tflm']]} | {r['litert_host_us']:,.0f} us |")
    out += ["", "| model | board | arena | stack | I/O | peak SRAM | TFLM arena (issue) | TFLM arena (host pkg) | "
            "firmware SRAM | weights | flash model | flash firmware |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        f = TFLM.get(r["model"])
        arena = f"{f['arena']:,}" if f else "-"
        out.append(f"| {r['model']} | {r['board']} | {r['arena_bytes']:,} | {r['stack_bytes'] or 0:,} | {r['io_bytes']:,} | "
                   f"{r['peak_sram_bytes']:,} | {arena} | {r['tflm_arena_host_bytes'] or 0:,} | "
                   f"{r['firmware_sram_bytes']:,} | {r['weights_bytes']:,} | {r['flash_model_bytes']:,} | "
                   f"{r['flash_firmware_bytes']:,} |")
    out += ["", "| model (qemu-m7) | TFLM+CMSIS-NN instr | edgec instr | >= 2x fewer | TFLM MACs/instr | edgec MACs/instr | "
            ">= 0.8 MACs/instr | TFLM arena | edgec peak SRAM | below | weights + 30 KB | flash model | ok | flash firmware | ok |",
            "|---|--:|--:|:-:|--:|--:|:-:|--:|--:|:-:|--:|--:|:-:|--:|:-:|"]
    for r in rows:
        g = r.get("targets") or {}
        if not g:
            continue
        f = TFLM[r["model"]]
        mt = g.get("macs_per_instruction_target")
        out.append(f"| {r['model']} | {f['instructions']:,} | {r['instructions']:,} | {g['speedup_vs_tflm']:.3f}x "
                   f"{yes[g['speedup_ok']]} | {f['macs_per_instruction']:.2f} | {r['macs_per_instruction']:.3f} | "
                   + (f"{yes[g['macs_per_instruction_ok']]}" if mt else "-")
                   + f" | {f['arena']:,} | {r['peak_sram_bytes']:,} | {yes[g['sram_ok']]} | {g['flash_budget']:,} | "
                   f"{r['flash_model_bytes']:,} | {yes[g['flash_model_ok']]} | {r['flash_firmware_bytes']:,} | "
                   f"{yes[g['flash_firmware_ok']]} |")
    return "\n".join(out) + "\n"


def _versions() -> dict:
    def first_line(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "?"

    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True)
    return {"qemu": first_line(["qemu-system-arm", "--version"]),
            "arm_gcc": first_line(["arm-none-eabi-gcc", "--version"]),
            "host": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "git": git.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="qemu-m7,qemu-m4")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    ap.add_argument("--portable", action="store_true", help="also count the kernels' portable C path (DSP cores)")
    ap.add_argument("--json", help="write the results as JSON to this file ('-' for stdout)")
    ap.add_argument("--markdown", help="also write the tables as Markdown to this file (for docs/benchmarks.md)")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    boards = [b.strip() for b in args.boards.split(",") if b.strip()]
    missing = [m for m in models if not (MODELS_DIR / f"{MODELS[m][0]}.tflite").exists()]
    if missing:
        raise SystemExit(f"MLPerf Tiny models not found in {MODELS_DIR}: {missing}")

    console = Console(stderr=args.json == "-", width=200)
    rows, refs, hosts = [], {}, {}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgec-bench-int8-") as tmp:
        work = Path(tmp)
        plugin = build_plugin(work)
        for short in models:
            path = MODELS_DIR / f"{MODELS[short][0]}.tflite"
            refs[short] = {"tflm_arena_host_bytes": tflm_arena(path), "litert_host_us": litert_host_us(path)}
            for b in boards:
                console.print(f"[dim]{short} on {b} ...[/]", highlight=False)
                row = measure(short, b, work, plugin, args.portable, hosts)
                row.update(refs[short])
                row["targets"] = targets(row) if b == "qemu-m7" else {}
                rows.append(row)
    elapsed = time.perf_counter() - t_start

    def ok(v: bool | None) -> str:
        return "" if v is None else ("[green]yes[/]" if v else "[red]no[/]")

    t = Table(title="edgec int8, MLPerf Tiny models: speed (emulated instructions counted exactly by a QEMU TCG "
                    "plugin around one inference after a warm-up)", title_justify="left")
    cols = ["model", "board", "MACs", "instructions", "MACs/instr", "vs TFLM+CMSIS (m7)", "SysTick check",
            "bit-exact (host, TFLM)", "LiteRT host (mean)"]
    if args.portable:
        cols.insert(5, "portable C kernels")
    for c in cols:
        t.add_column(c, justify="left" if c in ("model", "board") else "right")
    for r in rows:
        f = TFLM.get(r["model"])
        cells = [r["model"], r["board"], f"{r['macs']:,}", f"{r['instructions']:,}", f"{r['macs_per_instruction']:.3f}",
                 f"{f['instructions'] / r['instructions']:.3f}x fewer" if f else "-",
                 f"{r['systick_counter'] - r['instructions']:+d}",
                 ok(r["bit_exact_host"] and r["bit_exact_tflm"]), f"{r['litert_host_us']:,.0f} us"]
        if args.portable:
            pi = r.get("portable_instructions")
            cells.insert(5, f"{pi:,} ({pi / r['instructions']:.2f}x)" if pi else "-")
        t.add_row(*cells)
    console.print(t)

    tm = Table(title="memory (bytes): SRAM from the compile (arena, worst-case stack, I/O tensors) and the ELF; "
                     "flash from the ELF after --gc-sections", title_justify="left")
    for c in ("model", "board", "arena", "stack", "I/O", "peak SRAM", "TFLM arena (issue)", "TFLM arena (host pkg)",
              "firmware SRAM", "weights", "flash model", "flash firmware"):
        tm.add_column(c, justify="left" if c in ("model", "board") else "right")
    for r in rows:
        f = TFLM.get(r["model"])
        tm.add_row(r["model"], r["board"], f"{r['arena_bytes']:,}", f"{r['stack_bytes'] or 0:,}", f"{r['io_bytes']:,}",
                   f"{r['peak_sram_bytes']:,}", f"{f['arena']:,}" if f else "-",
                   f"{r['tflm_arena_host_bytes']:,}" if r["tflm_arena_host_bytes"] else "?",
                   f"{r['firmware_sram_bytes']:,}", f"{r['weights_bytes']:,}", f"{r['flash_model_bytes']:,}",
                   f"{r['flash_firmware_bytes']:,}")
    console.print(tm)

    tt = Table(title="the issue's targets (qemu-m7) vs TFLite Micro + CMSIS-NN on the same emulator", title_justify="left")
    for c in ("model", "TFLM+CMSIS instr", "edgec instr", "fewer (>= 2x)", "TFLM MACs/instr", "edgec MACs/instr",
              "MACs/instr target", "TFLM arena", "edgec peak SRAM", "below", "weights + 30 KB", "flash model", "ok",
              "flash firmware", "ok"):
        t_just = "left" if c == "model" else "right"
        tt.add_column(c, justify=t_just)
    for r in rows:
        g = r["targets"]
        if not g:
            continue
        f = TFLM[r["model"]]
        mt = g.get("macs_per_instruction_target")
        tt.add_row(r["model"], f"{f['instructions']:,}", f"{r['instructions']:,}",
                   f"{g['speedup_vs_tflm']:.3f}x " + ok(g["speedup_ok"]), f"{f['macs_per_instruction']:.2f}",
                   f"{r['macs_per_instruction']:.3f}", f">= {mt} " + ok(g["macs_per_instruction_ok"]) if mt else "-",
                   f"{f['arena']:,}", f"{r['peak_sram_bytes']:,}", ok(g["sram_ok"]), f"{g['flash_budget']:,}",
                   f"{r['flash_model_bytes']:,}", ok(g["flash_model_ok"]), f"{r['flash_firmware_bytes']:,}",
                   ok(g["flash_firmware_ok"]))
    console.print(tt)
    console.print(f"[dim]peak SRAM = arena + I/O tensors + worst-case stack (gcc call graph); TFLM's arena holds its "
                  f"I/O tensors (and its stack is extra). firmware SRAM = the ELF's .data + .bss with the 8 KiB stack "
                  f"reserve and the protocol buffers. SysTick check = the firmware's own counter minus the plugin's "
                  f"count (40-instruction ticks, plus the counter reads). {elapsed:.0f} s.[/]", highlight=False)

    if args.markdown:
        Path(args.markdown).write_text(markdown(rows, args.portable))
    if args.json:
        doc = {"bench": "int8", "versions": _versions(), "tflm_cmsis_nn_qemu_m7": TFLM,
               "targets": {"speedup": TARGET_SPEEDUP, "macs_per_instruction": TARGET_MACS_PER_INSTR,
                           "flash_slack_bytes": TARGET_FLASH_SLACK, "sram": "peak SRAM < TFLM arena"},
               "rows": rows, "elapsed_s": round(elapsed, 1)}
        text = json.dumps(doc, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EDGEC_STATE_DIR", tempfile.mkdtemp(prefix="edgec-bench-state-"))
    sys.exit(main())
