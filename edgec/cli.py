"""The `edgec` command line."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click
from rich.console import Console

from edgec import __version__
from edgec.errors import EdgecError

# Reports are wide tables: do not squeeze them to 80 columns when piped.
_err = Console(stderr=True)
_out = Console(width=None if sys.stdout.isatty() else 160)


def _fail(e: EdgecError) -> None:
    _err.print(f"[bold red]error:[/] {e.one_line()}", highlight=False, soft_wrap=True)
    sys.exit(e.exit_code)


class _Group(click.Group):
    """Turns every EdgecError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgecError as e:
            _fail(e)


@contextmanager
def _progress(enabled: bool) -> Iterator:
    """A status line for the long steps (kernel generation, building)."""
    if not enabled or not _err.is_terminal:
        yield lambda msg, done, total: None
        return
    with _err.status("compiling", spinner="dots") as status:
        def update(msg: str, done: int, total: int) -> None:
            status.update(f"[{done}/{total}] {msg}" if total > 1 else msg)

        yield update


def _shapes(specs: tuple[str, ...]):
    from edgec.frontend import parse_input_shapes

    return parse_input_shapes(specs)


_model_arg = click.argument("model", type=click.Path(path_type=Path))
_target_opt = click.option("--target", "-t", default="cortex-m7", show_default=True,
                           help="CPU target (see `edgec targets`).")
_shape_opt = click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=1x3x96x96",
                          help="Fix a dynamic input's shape (repeatable).")
_budget_opts = [
    click.option("--flash-kb", type=float, help="Flash budget in KiB (default: the target's)."),
    click.option("--ram-kb", type=float, help="RAM budget in KiB (default: the target's)."),
]
_json_opt = click.option("--json", "json_out", metavar="FILE", help="Also write the report as JSON to FILE ('-' for stdout).")


def _add(opts):
    def deco(f):
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgec")
def main() -> None:
    """edgec: compile neural networks into small, fast, freestanding C for microcontrollers.

    \b
    Typical use:
      edgec compile model.onnx --target cortex-m7 -o build/model
      edgec analyze model.onnx --target cortex-m4
      edgec validate model.onnx --target host --runs 20
    """


@main.command()
@_model_arg
@_target_opt
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for model.c/model.h/model_kernels.c/metadata.json (replaced if it exists).")
@_shape_opt
@_add(_budget_opts)
@_json_opt
@click.option("--no-build", is_flag=True, help="Only generate C; skip the toolchain build and size report.")
@click.option("-q", "--quiet", is_flag=True, help="No report table.")
def compile(model, target, out_dir, input_shape, flash_kb, ram_kb, json_out, no_build, quiet):
    """Compile MODEL (.onnx) into C for TARGET and build it with the target's toolchain.

    Writes model.h (the C API), model.c (const weights in flash, one static
    arena), model_kernels.c (TVM-generated kernels), metadata.json, and a
    Makefile/CMake fragment. Refuses models that exceed the flash/RAM budget.
    """
    from edgec.compiler import compile_model
    from edgec.report import compile_report, dump_json, print_compile_report

    with _progress(not quiet) as progress:
        r = compile_model(model, target, input_shapes=_shapes(input_shape), out_dir=out_dir,
                          build=not no_build, flash_kb=flash_kb, ram_kb=ram_kb, progress=progress)
    if not quiet:
        print_compile_report(r, _out)
    if json_out:
        dump_json(compile_report(r), json_out, _out)


@main.command()
@_model_arg
@_target_opt
@_shape_opt
@_add(_budget_opts)
@_json_opt
def analyze(model, target, input_shape, flash_kb, ram_kb, json_out):
    """Report per-layer MACs, parameters, memory and kernels for MODEL on TARGET.

    Compiles and builds in a temporary folder and writes nothing (except the
    JSON report when --json is given). Exits 2 if the model does not fit.
    """
    from edgec.compiler import compile_model
    from edgec.report import compile_report, dump_json, print_compile_report

    with _progress(True) as progress:
        r = compile_model(model, target, input_shapes=_shapes(input_shape), out_dir=None,
                          flash_kb=flash_kb, ram_kb=ram_kb, progress=progress)
    print_compile_report(r, _out)
    if json_out:
        dump_json(compile_report(r), json_out, _out)


@main.command()
@_model_arg
@click.option("--target", "-t", default="host", show_default=True, help="Target whose C is generated (run on the host).")
@_shape_opt
@click.option("--runs", default=20, show_default=True, help="Number of random inputs.")
@click.option("--inputs", type=click.Path(path_type=Path), help=".npy (one input) or .npz (by input name); optional leading runs axis.")
@click.option("--tolerance", default=1e-4, show_default=True, help="Max relative error (max|diff| / max|reference|).")
@click.option("--seed", default=0, show_default=True)
@_json_opt
def validate(model, target, input_shape, runs, inputs, tolerance, seed, json_out):
    """Run the generated C for MODEL on the host and compare it with onnxruntime.

    Prints max abs / max rel error and cosine similarity per output; exits 1
    when an output is off by more than --tolerance.
    """
    from edgec.compiler import compile_model
    from edgec.errors import ValidationError
    from edgec.report import dump_json, print_validation, validation_json
    from edgec.validate import compare

    with _progress(True) as progress:
        r = compile_model(model, target, input_shapes=_shapes(input_shape), build=False, progress=progress)
        rep = compare(model, r, runs, inputs, tolerance, seed)
    print_validation(rep, _out)
    if json_out:
        dump_json(validation_json(rep), json_out, _out)
    if not rep.passed:
        worst = max(rep.outputs, key=lambda o: o.max_rel)
        raise ValidationError(f"output '{worst.name}' differs from onnxruntime: max rel error {worst.max_rel:.3e} > {tolerance:g}")


@main.command()
@_json_opt
def targets(json_out):
    """List the CPU targets (targets/*.toml): flags, FPU/DSP/MVE, default budget."""
    from rich.table import Table

    from edgec.report import dump_json
    from edgec.targets import list_targets

    ts = list_targets()
    table = Table(title="edgec targets", title_justify="left")
    for col in ("target", "arch", "compiler", "FPU", "DSP", "MVE", "flash", "RAM", "budget from"):
        table.add_column(col, justify="right" if col in ("flash", "RAM") else "left")
    for t in ts:
        table.add_row(t.name, t.arch, t.compiler, t.fpu, "yes" if t.dsp else "-", "yes" if t.mve else "-",
                      f"{t.flash_kb:,} KB", f"{t.ram_kb:,} KB", t.part.split(" (")[0])
    _out.print(table)
    if json_out:
        dump_json({"targets": [{"name": t.name, "arch": t.arch, "cpu": t.cpu, "compiler": t.compiler,
                                "cflags": list(t.cflags), "fpu": t.fpu, "dsp": t.dsp, "mve": t.mve,
                                "flash_kb": t.flash_kb, "ram_kb": t.ram_kb} for t in ts]}, json_out, _out)


@main.command()
@_json_opt
def boards(json_out):
    """List the boards (boards/*/board.toml): CPU, memory budget, flash method, serial."""
    from rich.table import Table

    from edgec.boards import list_boards
    from edgec.device.qemu import running
    from edgec.report import dump_json

    bs = list_boards()
    table = Table(title="edgec boards", title_justify="left")
    for col in ("board", "kind", "cpu target", "flash", "RAM", "stands for / part", "flash method", "counter", "serial"):
        table.add_column(col, justify="right" if col in ("flash", "RAM") else "left")
    rows = []
    for b in bs:
        inst = running(b.name) if b.emulated else None
        serial = inst.url if inst else (f"{b.console.get('uart', '?')} @ {b.console['baud']}" if not b.emulated else "not started")
        table.add_row(b.name, "emulated" if b.emulated else "real", b.target, f"{b.flash_kb:,} KB", f"{b.ram_kb:,} KB",
                      b.part, b.flash_method, b.counter_unit, serial)
        rows.append({"name": b.name, "kind": b.kind, "target": b.target, "flash_kb": b.flash_kb, "ram_kb": b.ram_kb,
                     "part": b.part, "flash_method": b.flash_method, "counter": b.counter_unit, "serial": serial})
    _out.print(table)
    if json_out:
        dump_json({"boards": rows}, json_out, _out)


@main.group(cls=_Group)
def board() -> None:
    """Start and stop emulated boards (QEMU, serial on 127.0.0.1)."""


@board.command("start")
@click.argument("name", default="qemu-m7")
@click.option("--pty", is_flag=True, help="Serial on a pseudo-terminal instead of a TCP port (for tools like stm32flash).")
def board_start(name, pty):
    """Start emulated board NAME in the background, booted into edgec's serial
    bootloader, and print its serial port URL."""
    from edgec.boards import load_board
    from edgec.build.bootloader import build_bootloader
    from edgec.device import qemu

    b = load_board(name)
    existing = qemu.running(name)
    if existing:
        _out.print(existing.url)
        _err.print(f"{name} is already running (pid {existing.pid})")
        return
    elf = build_bootloader(b, qemu.state_dir() / f"{name}-bootloader")
    inst = qemu.start(b, [(elf, None)], pty=pty)
    _out.print(inst.url)
    _err.print(f"{name} started (pid {inst.pid}); flash with: edgec flash <build> --port {inst.url}")


@board.command("stop")
@click.argument("name", default="qemu-m7")
def board_stop(name):
    """Stop emulated board NAME (by its recorded process id)."""
    from edgec.device import qemu

    inst = qemu.running(name)
    if inst is None:
        _err.print(f"{name} is not running")
        return
    inst.stop()
    _err.print(f"{name} stopped (pid {inst.pid})")


if __name__ == "__main__":  # pragma: no cover
    main()
