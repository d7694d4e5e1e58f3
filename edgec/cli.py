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
_quant_opts = [
    click.option("--quantize", type=click.Choice(["int8"]), default=None,
                 help="Post-training quantization of a float ONNX model (int8: per-channel weights, per-tensor "
                      "activations, integer-only C with an int8 API). Quantized ONNX (QDQ/QOperator) needs no flag."),
    click.option("--calib", type=click.Path(path_type=Path), default=None,
                 help="Calibration samples for --quantize: .npy, .npz (by input name, or 'x') or a folder of .npy "
                      "(at least 10 samples, the model's preprocessing applied)."),
    click.option("--calib-random", is_flag=True, help="Calibrate on random data (no --calib): runs, but inaccurate."),
    click.option("--observer", type=click.Choice(["minmax", "percentile", "mse"]), default=None,
                 help="Activation range observer for --quantize (default: minmax)."),
    click.option("--no-bias-correction", is_flag=True, help="Skip the empirical bias correction of --quantize."),
]


def _quant_options(quantize, calib, calib_random, observer, no_bias_correction):
    from edgec.errors import ModelError

    if quantize is None:
        if calib is not None or calib_random or observer or no_bias_correction:
            raise ModelError("--calib / --calib-random / --observer / --no-bias-correction need --quantize int8")
        return None
    from edgec.compiler import QuantizeOptions

    if calib is not None and calib_random:
        raise ModelError("give either --calib or --calib-random, not both")
    if calib_random:
        from edgec.calibration import RANDOM_WARNING

        _err.print(f"[bold yellow]{RANDOM_WARNING}[/]", highlight=False, soft_wrap=True)
    return QuantizeOptions(quantize, calib, calib_random, observer, not no_bias_correction)


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
@_add(_quant_opts)
@_json_opt
@click.option("--kernels", type=click.Choice(["auto", "runtime_c", "tvm"]), default="auto", show_default=True,
              help="For ops with both: edgec's hand-tuned runtime_c kernels or TVM-generated ones (auto: the cost model).")
@click.option("--no-build", is_flag=True, help="Only generate C; skip the toolchain build and size report.")
@click.option("-q", "--quiet", is_flag=True, help="No report table.")
def compile(model, target, out_dir, board, harness, input_shape, flash_kb, ram_kb, quantize, calib, calib_random, observer,
            no_bias_correction, json_out, kernels, no_build, quiet):
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
    qopts = _quant_options(quantize, calib, calib_random, observer, no_bias_correction)
    with _progress(not quiet) as progress:
        r = compile_model(model, target, input_shapes=_shapes(input_shape), out_dir=out_dir,
                          build=not no_build, flash_kb=flash_kb, ram_kb=ram_kb, progress=progress,
                          board=board, harness=harness, kernels=kernels, quantize=qopts)
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
@click.option("--tolerance", type=float, default=None,
              help="Float models: max relative error (max|diff| / max|reference|), default 1e-4. "
                   "Quantized ONNX: max difference in output quantization steps, default 2.")
@click.option("--seed", default=0, show_default=True)
@_add(_quant_opts)
@click.option("--dataset", type=click.Path(path_type=Path), default=None,
              help="Labelled samples (.npz with x and y) for int8 models: accuracy of float vs int8.")
@click.option("--labels", type=click.Path(path_type=Path), default=None,
              help="Class labels (.npy of ints) for the samples of --inputs.")
@click.option("--min-agreement", type=float, default=None, help="--quantize: minimum top-1 agreement with the float model (default 0.9).")
@click.option("--max-accuracy-drop", type=float, default=None,
              help="--quantize with labels: maximum accuracy drop in points (default 1.0).")
@click.option("--against", type=click.Choice(["auto", "onnxruntime", "tflite"]), default="auto", show_default=True,
              help="Reference: onnxruntime for ONNX, TFLite Micro (+ LiteRT) for .tflite models and build folders of them.")
@_json_opt
def validate(model, target, input_shape, runs, inputs, tolerance, seed, quantize, calib, calib_random, observer,
             no_bias_correction, dataset, labels, min_agreement, max_accuracy_drop, against, json_out):
    """Run the generated C for MODEL on the host and compare it with onnxruntime.

    Float models: max abs / max rel error and cosine similarity per output;
    exits 1 when an output is off by more than --tolerance. Quantized ONNX
    (QDQ / QOperator): the integer C against onnxruntime running the same
    quantized model, a histogram of differences in quantization steps (pass:
    every value within --tolerance steps, default 2). With --quantize int8:
    the int8 C against the float model (top-1 agreement; accuracy with
    --dataset / --labels). int8 runs are also checked bit-exact against
    edgec's NumPy integer reference.
    """
    from edgec.compiler import _pipeline_for, compile_model
    from edgec.errors import ValidationError
    from edgec.report import dump_json, print_validation, validation_json
    from edgec.validate import compare

    if against == "tflite" or Path(model).suffix.lower() == ".tflite" or Path(model).is_dir():
        return _validate_tflite(model, target, runs, seed, json_out)
    qopts = _quant_options(quantize, calib, calib_random, observer, no_bias_correction)
    with _progress(True) as progress:
        r = compile_model(model, target, input_shapes=_shapes(input_shape), build=False, progress=progress, quantize=qopts)
        if _pipeline_for(r.graph) == "int8" and Path(model).suffix.lower() == ".onnx":
            from edgec.validate_int8 import compare_int8, print_int8_validation

            rep8 = compare_int8(model, r, runs, inputs, tolerance, seed, dataset, labels, min_agreement, max_accuracy_drop)
        else:
            rep8 = None
            if dataset is not None or labels is not None:
                from edgec.errors import ModelError

                raise ModelError("--dataset / --labels apply to int8 models (--quantize int8 or a quantized ONNX model)")
            rep = compare(model, r, runs, inputs, 1e-4 if tolerance is None else tolerance, seed)
    if rep8 is not None:
        print_int8_validation(rep8, _out)
        if json_out:
            dump_json(rep8.to_json(), json_out, _out)
        if not rep8.passed:
            raise ValidationError(rep8.failures[0])
        return
    print_validation(rep, _out)
    if json_out:
        dump_json(validation_json(rep), json_out, _out)
    if not rep.passed:
        worst = max(rep.outputs, key=lambda o: o.max_rel)
        raise ValidationError(f"output '{worst.name}' differs from onnxruntime: max rel error {worst.max_rel:.3e} > {rep.tolerance:g}")


def _validate_tflite(model, target, runs, seed, json_out):
    """MODEL is a .tflite file or a build folder compiled from one."""
    from edgec.compiler import compile_model
    from edgec.errors import InputFileError, ValidationError
    from edgec.hostrun import host_model_for
    from edgec.report import dump_json
    from edgec.validate_tflite import compare_tflite, print_tflite_validation

    path = Path(model)
    if path.is_dir():
        from edgec.device.session import BuildFolder

        bf = BuildFolder.open(path)
        src = Path(bf.meta.get("source_model") or "")
        if src.suffix.lower() != ".tflite":
            raise InputFileError(f"{path} was not compiled from a .tflite model (source: {src or 'unknown'})")
        host = bf.host_model()
        dtypes = [t["dtype"] for t in bf.meta["inputs"]]
    else:
        src = path
        with _progress(True) as progress:
            r = compile_model(path, target, build=False, progress=progress)
        host = host_model_for(r)
        dtypes = [r.graph.tensor(t).dtype for t in r.graph.inputs]
    try:
        rep = compare_tflite(src, host, dtypes, runs, seed)
    finally:
        host.close()
    print_tflite_validation(rep, _out)
    if json_out:
        dump_json(rep.to_json(), json_out, _out)
    if not rep.passed:
        tflm = rep.references[0]
        raise ValidationError(f"{tflm.differing} of {tflm.compared} output values differ from TFLite Micro" if tflm.available
                              else "tflite-micro is not installed: cannot check bit-exactness")


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
    """Runs of inputs in the model's dtypes: from .npy/.npz (int8 models take integer
    arrays, or real values that are quantized with the input's scale and zero point),
    else random (float: standard normal; int8: uniform over -128..127)."""
    import numpy as np

    from edgec.device.session import load_run_inputs, random_inputs

    if inputs is not None:
        return load_run_inputs(bf, inputs)
    rng = np.random.default_rng(seed)
    return [random_inputs(bf, rng) for _ in range(runs)]


@main.command()
@_build_arg
@_port_opt
@click.option("--inputs", type=click.Path(path_type=Path),
              help=".npy/.npz inputs (optional leading runs axis); int8 models: integers, or real values to quantize. Default: random.")
@click.option("--runs", default=1, show_default=True, help="Random inputs to run when --inputs is not given.")
@click.option("--seed", default=0, show_default=True)
@click.option("--save", type=click.Path(path_type=Path), help="Write the board's outputs to this .npz.")
@_json_opt
def run(build, port, inputs, runs, seed, save, json_out):
    """Run BUILD's model on the board at PORT; compare with the host build of
    the same C (must be bit-identical) and with the reference: TFLite Micro for
    .tflite models (int8: must be bit-identical; differing bytes are reported),
    onnxruntime for .onnx models (max abs error; int8 outputs dequantized and the
    error also given in steps of the output scale; int8 inputs dequantized for a
    float model, NHWC transposed to the ONNX model's NCHW)."""
    import numpy as np
    from rich.table import Table

    from edgec.device.link import Link
    from edgec.device.session import BuildFolder, check_board_model, compare_with_reference, run_on_board
    from edgec.errors import ValidationError
    from edgec.report import dump_json

    bf = BuildFolder.open(build)
    batches = _load_run_inputs(bf, inputs, runs, seed)
    host = bf.host_model()
    ref = _reference_session(bf)
    rows, saved = [], []
    try:
        with Link(port) as link:
            info = check_board_model(link, bf)
            for k, batch in enumerate(batches):
                r = run_on_board(link, bf, batch, info)
                h = host.run(batch)
                diff_bytes = sum(int(np.count_nonzero(a.reshape(-1).view(np.uint8) != b.reshape(-1).view(np.uint8)))
                                 for a, b in zip(r.outputs, h))
                row = {"run": k, "counter": r.counter, "unit": r.counter_unit, "bytes_differing_from_host": diff_bytes,
                       "reference": ref.name if ref else None, "bytes_differing_from_reference": None,
                       "max_steps_from_reference": None, "max_abs_error_vs_reference": None,
                       "max_abs_error_vs_onnxruntime": None}
                if ref is not None:
                    c = compare_with_reference(bf, r.outputs, ref.run(batch))
                    row.update(bytes_differing_from_reference=c.bytes_differing, max_steps_from_reference=c.max_steps,
                               max_abs_error_vs_reference=c.max_abs_error)
                    if ref.name == "onnxruntime":
                        row["max_abs_error_vs_onnxruntime"] = c.max_abs_error
                rows.append(row)
                saved.append(r.outputs)
    finally:
        host.close()
    table = Table(title=f"{bf.name} on {info.get('board', '?')} ({port})", title_justify="left")
    for col in ("run", info.get("counter", "counter"), "vs host build", f"vs {ref.name if ref else 'reference'}"):
        table.add_column(col, justify="right")
    for row in rows:
        if row["bytes_differing_from_reference"] is not None:
            n = row["bytes_differing_from_reference"]
            vs_ref = "[green]bit-identical[/]" if n == 0 else f"[red]{n} bytes differ (max {row['max_steps_from_reference']} steps)[/]"
        elif row["max_abs_error_vs_reference"] is not None:
            vs_ref = f"max abs err {row['max_abs_error_vs_reference']:.3e}"
            if row["max_steps_from_reference"] is not None:  # int8 outputs vs a float model
                vs_ref += f" ({row['max_steps_from_reference']:.2f} output steps)"
        else:
            vs_ref = "-"
        table.add_row(str(row["run"]), f"{row['counter']:,}",
                      "[green]bit-identical[/]" if row["bytes_differing_from_host"] == 0 else f"[red]{row['bytes_differing_from_host']} bytes differ[/]",
                      vs_ref)
    _out.print(table)
    if save:
        np.savez(save, **{f"{t['name']}": np.stack([o[i] for o in saved]) for i, t in enumerate(bf.meta["outputs"])})
    if json_out:
        dump_json({"model": bf.name, "board": info.get("board"), "reference": ref.name if ref else None, "runs": rows},
                  json_out, _out)
    bad = [r for r in rows if r["bytes_differing_from_host"]]
    if bad:
        raise ValidationError(f"the board's output differs from the host build of the same C in {len(bad)} of {len(rows)} runs")
    if ref is not None and ref.exact:
        bad = [r for r in rows if r["bytes_differing_from_reference"]]
        if bad:
            raise ValidationError(f"the board's output differs from {ref.name} in {len(bad)} of {len(rows)} runs "
                                  f"({sum(r['bytes_differing_from_reference'] for r in bad)} bytes)")


def _reference_session(bf):
    """The source model's reference runtime, when the build folder's model file is still
    there: TFLite Micro for .tflite, onnxruntime for .onnx (edgec.device.session.reference_for)."""
    from edgec.device.session import reference_for

    return reference_for(bf)


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
    inference, MACs per count. Random inputs in the model's dtypes (int8 models:
    int8). Writes a PNG bar chart and, with --json, JSON."""
    from rich.table import Table

    from edgec.device.link import Link
    from edgec.device.profile import plot_profile, profile_on_board
    from edgec.device.session import BuildFolder
    from edgec.report import dump_json

    bf = BuildFolder.open(build)
    with Link(port) as link:
        p = profile_on_board(link, bf, runs, seed)
    unit = p.unit
    dtypes = "/".join(sorted({t["dtype"] for t in bf.meta["inputs"]}))
    table = Table(title=f"{p.model} ({dtypes}) on {p.board}: {p.total:,} {unit} per inference "
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
