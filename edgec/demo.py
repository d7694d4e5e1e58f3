"""`make demo`: the main job end to end on the default board.

1. Compiles every example model for cortex-m7 (TVM kernels, static arena,
   built with arm-none-eabi-gcc, sizes from the objects) and checks the
   generated C on the host against onnxruntime.
2. Compiles the demo model (the keyword spotter) with firmware for the default
   board, starts the emulated board (QEMU, booted into edgec's serial
   bootloader), flashes it over the serial port, runs it, checks the board's
   output against the host build (bit for bit) and onnxruntime, and prints the
   per-layer profile. The board is stopped at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from edgec.compiler import compile_model
from edgec.errors import EdgecError
from edgec.report import print_compile_report, print_validation
from edgec.resources import mlperf_models_dir
from edgec.validate import compare

ROOT = Path(__file__).resolve().parent.parent
DEMO_MODEL = ROOT / "examples" / "kws_dscnn.onnx"
DEMO_BOARD = "qemu-m7"


def _cli(console: Console, args: list[str]) -> str:
    from edgec.cli import main

    console.print(f"[bold]$ edgec {' '.join(args)}[/]")
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    console.print(res.stdout, end="")
    if res.stderr:
        console.print(res.stderr.strip(), style="dim")
    if res.exit_code != 0:
        raise SystemExit(res.exit_code)
    return res.stdout


def main() -> int:
    console = Console(width=None if sys.stdout.isatty() else 160)
    examples = sorted((ROOT / "examples").glob("*.onnx"))
    failures = 0
    for model in examples:
        console.rule(f"[bold]{model.name}: compile for cortex-m7, validate on the host")
        try:
            r = compile_model(model, "cortex-m7", out_dir=ROOT / "build" / model.stem)
            print_compile_report(r, console)
            rep = compare(model, compile_model(model, "host", build=False), 10, None, 1e-4)
            print_validation(rep, console)
            failures += not rep.passed
        except EdgecError as e:
            console.print(f"[red]error:[/] {e.one_line()}")
            failures += 1

    console.rule(f"[bold]{DEMO_MODEL.name} on the emulated board {DEMO_BOARD}, over its serial port")
    out = ROOT / "build" / f"{DEMO_MODEL.stem}-{DEMO_BOARD}"
    _cli(console, ["compile", str(DEMO_MODEL.relative_to(ROOT)), "--board", DEMO_BOARD, "-o", str(out.relative_to(ROOT)), "-q"])
    url = _cli(console, ["board", "start", DEMO_BOARD]).strip()
    try:
        _cli(console, ["flash", str(out.relative_to(ROOT)), "--port", url])
        _cli(console, ["run", str(out.relative_to(ROOT)), "--port", url, "--runs", "3"])
        _cli(console, ["profile", str(out.relative_to(ROOT)), "--port", url, "--runs", "3"])
        int8_model = mlperf_models_dir() / "kws_ref_model.tflite"
        if int8_model.exists():
            console.rule(f"[bold]{int8_model.name} (int8, MLPerf Tiny) on {DEMO_BOARD}: runtime_c DSP kernels")
            out8 = ROOT / "build" / f"kws_int8-{DEMO_BOARD}"
            _cli(console, ["compile", str(int8_model), "--board", DEMO_BOARD, "-o", str(out8.relative_to(ROOT))])
            _cli(console, ["validate", str(out8.relative_to(ROOT)), "--against", "tflite", "--runs", "20"])
            # the board runs the first model now: restart it into its bootloader
            _cli(console, ["board", "stop", DEMO_BOARD])
            url = _cli(console, ["board", "start", DEMO_BOARD]).strip()
            _cli(console, ["flash", str(out8.relative_to(ROOT)), "--port", url])
            _cli(console, ["run", str(out8.relative_to(ROOT)), "--port", url, "--runs", "3"])
            _cli(console, ["profile", str(out8.relative_to(ROOT)), "--port", url, "--runs", "3"])
    finally:
        _cli(console, ["board", "stop", DEMO_BOARD])
    console.rule()
    console.print(f"{len(examples) - failures}/{len(examples)} example models compiled for cortex-m7 and matched onnxruntime on the host; "
                  f"{DEMO_MODEL.stem} ran on {DEMO_BOARD} bit-identical to the host build")
    return 1 if failures else 0


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    sys.exit(main())
