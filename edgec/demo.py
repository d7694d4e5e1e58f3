"""`make demo`: the main job end to end on the default target.

Compiles every example model for cortex-m7 (TVM kernels, static arena, built
with arm-none-eabi-gcc, sizes from the objects), prints the reports, then runs
the generated C on the host against onnxruntime.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from edgec.compiler import compile_model
from edgec.errors import EdgecError
from edgec.report import print_compile_report, print_validation
from edgec.validate import compare

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    console = Console(width=None if sys.stdout.isatty() else 160)
    examples = sorted((ROOT / "examples").glob("*.onnx"))
    failures = 0
    for model in examples:
        console.rule(f"[bold]{model.name}")
        try:
            r = compile_model(model, "cortex-m7", out_dir=ROOT / "build" / model.stem)
            print_compile_report(r, console)
            rep = compare(model, compile_model(model, "host", build=False), 10, None, 1e-4)
            print_validation(rep, console)
            failures += not rep.passed
        except EdgecError as e:
            console.print(f"[red]error:[/] {e.one_line()}")
            failures += 1
    console.rule()
    console.print(f"{len(examples) - failures}/{len(examples)} example models compiled for cortex-m7 and matched onnxruntime on the host")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
