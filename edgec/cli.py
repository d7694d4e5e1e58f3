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
_err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
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
@click.option("--target", "-t", default=None, help="CPU target (see `edgec targets`); default: the board's, else cortex-m7.")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for model.c/model.h/model_kernels.c/metadata.json (replaced if it exists).")
@click.option("--board", "-b", default=None, help="Also link firmware for this board (see `edgec boards`): firmware.elf/.bin.")
@click.option("--harness", type=click.Choice(["edgec", "mlperf-tiny"]), default="edgec", show_default=True,
              help="Firmware protocol: edgec's framed serial protocol, or the MLPerf Tiny / EEMBC text protocol.")
@_shape_opt
@_add(_budget_opts)
@_json_opt
@click.option("--no-build", is_flag=True, help="Only generate C; skip the toolchain build and size report.")
@click.option("-q", "--quiet", is_flag=True, help="No report table.")
def compile(model, target, out_dir, board, harness, input_shape, flash_kb, ram_kb, json_out, no_build, quiet):
    """Compile MODEL (.onnx) into C for TARGET and build it with the target's toolchain.

    Writes model.h (the C API), model.c (const weights in flash, one static
    arena), model_kernels.c (TVM-generated kernels), metadata.json, and a
    Makefile/CMake fragment; with --board also the firmware image. Refuses
    models that exceed the flash/RAM budget.
    """
    from edgec.compiler import compile_model
    from edgec.report import compile_report, dump_json, print_compile_report

    if target is None and board is None:
        target = "cortex-m7"
    with _progress(not quiet) as progress:
        r = compile_model(model, target, input_shapes=_shapes(input_shape), out_dir=out_dir,
                          build=not no_build, flash_kb=flash_kb, ram_kb=ram_kb, progress=progress,
                          board=board, harness=harness)
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


_build_arg = click.argument("build", type=click.Path(path_type=Path))
_port_opt = click.option("--port", "-p", required=True, metavar="URL",
                         help="Serial port: socket://127.0.0.1:PORT (emulated board), /dev/ttyACM0, rfc2217://host:port.")


@main.command()
@_build_arg
@_port_opt
@click.option("--method", type=click.Choice(["stm32-serial", "pyocd"]), default=None,
              help="Flash method (default: the board's): the STM32 USART bootloader protocol, or pyocd.")
@click.option("--no-verify", is_flag=True, help="Skip reading the image back.")
def flash(build, port, method, no_verify):
    """Flash BUILD's firmware (from `edgec compile --board`) through PORT.

    Checks the image fits the board before sending, shows progress, reads
    the image back to verify it, then starts it (GO).
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from edgec.boards import load_board
    from edgec.device.flash import flash_image
    from edgec.device.session import BuildFolder

    bf = BuildFolder.open(build)
    image, fw = bf.firmware()
    b = load_board(fw["board"])
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=_err, transient=True, disable=not _err.is_terminal) as bar:
        task = bar.add_task("flashing", total=len(image))

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)

        rep = flash_image(port, image, fw["load_address"], b, verify=not no_verify, progress=progress, method=method)
    _out.print(f"flashed {bf.name} to {b.name}: {rep.summary()}")


def _load_run_inputs(bf, inputs: Path | None, runs: int, seed: int):
    import numpy as np

    from edgec.validate import load_inputs

    if inputs is not None:
        return load_inputs(inputs, [t["name"] for t in bf.meta["inputs"]], bf.input_shapes())
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(np.float32) for s in bf.input_shapes()] for _ in range(runs)]


@main.command()
@_build_arg
@_port_opt
@click.option("--inputs", type=click.Path(path_type=Path), help=".npy/.npz inputs (optional leading runs axis); default: random.")
@click.option("--runs", default=1, show_default=True, help="Random inputs to run when --inputs is not given.")
@click.option("--seed", default=0, show_default=True)
@click.option("--save", type=click.Path(path_type=Path), help="Write the board's outputs to this .npz.")
@_json_opt
def run(build, port, inputs, runs, seed, save, json_out):
    """Run BUILD's model on the board at PORT; compare with the host build of
    the same C (must be bit-identical) and with onnxruntime (error printed)."""
    import numpy as np
    from rich.table import Table

    from edgec.device.link import Link
    from edgec.device.session import BuildFolder, check_board_model, run_on_board
    from edgec.errors import ValidationError
    from edgec.report import dump_json

    bf = BuildFolder.open(build)
    batches = _load_run_inputs(bf, inputs, runs, seed)
    host = bf.host_model()
    ref = _reference_session(bf)
    rows, saved = [], []
    with Link(port) as link:
        info = check_board_model(link, bf)
        for k, batch in enumerate(batches):
            r = run_on_board(link, bf, batch, info)
            h = host.run(batch)
            diff_bytes = sum(int(np.count_nonzero(a.view(np.uint8) != b.view(np.uint8))) for a, b in zip(r.outputs, h))
            ref_err = None
            if ref is not None:
                want = ref(batch)
                ref_err = max(float(np.abs(a.astype(np.float64) - w).max()) for a, w in zip(r.outputs, want))
            rows.append({"run": k, "counter": r.counter, "unit": r.counter_unit, "bytes_differing_from_host": diff_bytes,
                         "max_abs_error_vs_onnxruntime": ref_err})
            saved.append(r.outputs)
    host.close()
    table = Table(title=f"{bf.name} on {info.get('board', '?')} ({port})", title_justify="left")
    for col in ("run", info.get("counter", "counter"), "vs host build", "max abs err vs onnxruntime"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(str(row["run"]), f"{row['counter']:,}",
                      "[green]bit-identical[/]" if row["bytes_differing_from_host"] == 0 else f"[red]{row['bytes_differing_from_host']} bytes differ[/]",
                      "-" if row["max_abs_error_vs_onnxruntime"] is None else f"{row['max_abs_error_vs_onnxruntime']:.3e}")
    _out.print(table)
    if save:
        np.savez(save, **{f"{t['name']}": np.stack([o[i] for o in saved]) for i, t in enumerate(bf.meta["outputs"])})
    if json_out:
        dump_json({"model": bf.name, "board": info.get("board"), "runs": rows}, json_out, _out)
    bad = [r for r in rows if r["bytes_differing_from_host"]]
    if bad:
        raise ValidationError(f"the board's output differs from the host build of the same C in {len(bad)} of {len(rows)} runs")


def _reference_session(bf):
    """onnxruntime on the source model, when the build folder's model file is still there."""
    src = bf.meta.get("source_model")
    if not src or not Path(src).exists() or not src.endswith(".onnx"):
        return None
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    in_names = [t["name"] for t in bf.meta["inputs"]]

    def run_ref(batch):
        feed = dict(zip(in_names, batch))
        return [np.asarray(o, np.float32) for o in sess.run(None, {n: feed[n] for n in names})]

    return run_ref


@main.command()
@_build_arg
@_port_opt
@click.option("--runs", default=5, show_default=True, help="Inferences; per-layer figures are medians.")
@click.option("--seed", default=0, show_default=True)
@click.option("--png", type=click.Path(path_type=Path), help="Bar chart of the per-layer counts (default: BUILD/profile.png).")
@_json_opt
def profile(build, port, runs, seed, png, json_out):
    """Per-layer profile of BUILD's model on the board at PORT: counter per
    layer (cycles on real boards, emulated instructions on QEMU), share of the
    inference, MACs per count. Writes a PNG bar chart and, with --json, JSON."""
    from rich.table import Table

    from edgec.device.link import Link
    from edgec.device.profile import plot_profile, profile_on_board
    from edgec.device.session import BuildFolder
    from edgec.report import dump_json

    bf = BuildFolder.open(build)
    with Link(port) as link:
        p = profile_on_board(link, bf, runs, seed)
    unit = p.unit
    table = Table(title=f"{p.model} on {p.board}: {p.total:,} {unit} per inference "
                        f"({p.macs / max(p.total, 1):.3f} MACs per count, spread over {runs} runs: {p.total_spread})",
                  title_justify="left")
    for col in ("#", "layer", "op", "kernel", "MACs", unit, "share", "MACs/count"):
        table.add_column(col, justify="left" if col in ("layer", "op", "kernel") else "right")
    for L in p.layers:
        table.add_row(str(L.index), L.name, L.op, L.kernel, f"{L.macs:,}", f"{L.count:,}",
                      f"{100 * L.count / max(p.total, 1):.1f}%", "-" if not L.macs_per_count else f"{L.macs_per_count:.3f}")
    _out.print(table)
    out_png = plot_profile(p, png or (bf.path / "profile.png"))
    _err.print(f"chart: {out_png}")
    if json_out:
        dump_json(p.to_json(), json_out, _out)


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
