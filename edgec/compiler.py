"""The compile driver: model file -> passes -> kernels -> memory plan -> C -> build.

Output files are written to a temporary folder next to the destination and
moved into place only when everything (including the budget check) passed, so
a failed compile leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from edgec.build import BuildResult, compile_objects
from edgec.codegen.c_model import generate, metadata
from edgec.errors import BudgetError, InputFileError, TargetError
from edgec.frontend import load_onnx
from edgec.ir import Graph
from edgec.lower.kernels import KernelSet, Layer, build_layers
from edgec.passes.memory_plan import MemoryPlan, plan_memory
from edgec.passes.pipeline import run_pipeline
from edgec.targets import Target, load_target

if TYPE_CHECKING:  # pragma: no cover
    from edgec.boards import Board
    from edgec.build.firmware import FirmwareImage

Progress = Callable[[str, int, int], None]  # (message, done, total)


@dataclass
class Totals:
    macs: int
    params: int
    weight_bytes: int
    arena_bytes: int
    flash_bytes: int | None = None  # from the object files (text + rodata + data)
    ram_bytes: int | None = None  # data + bss (includes the arena)
    max_stack_bytes: int | None = None  # run() frame + deepest kernel frame (-fstack-usage)
    max_stack_function: str | None = None

    @property
    def peak_sram_bytes(self) -> int | None:
        if self.ram_bytes is None or self.max_stack_bytes is None:
            return None
        return self.ram_bytes + self.max_stack_bytes


@dataclass
class CompileResult:
    graph: Graph
    layers: list[Layer]
    kernels: KernelSet
    plan: MemoryPlan
    target: Target
    files: dict[str, str]
    totals: Totals
    build: BuildResult | None
    timings: dict[str, float] = field(default_factory=dict)
    out_dir: Path | None = None
    board: "Board | None" = None
    firmware: "FirmwareImage | None" = None
    # int8 models from ONNX: how they were quantized (PTQ report or imported QDQ/QOperator)
    quantization: dict | None = None


def load_model(path: str | Path, input_shapes: dict | None = None) -> Graph:
    path = Path(path)
    if path.suffix.lower() == ".tflite":
        from edgec.frontend.tflite_frontend import load_tflite

        if input_shapes:
            raise InputFileError("--input-shape applies to ONNX models; TFLite models have static shapes")
        return load_tflite(path)
    from edgec.frontend.onnx_quantized import is_quantized_onnx, load_quantized_onnx

    if is_quantized_onnx(path):  # QDQ / QOperator: true integer edgec.q ops
        return load_quantized_onnx(path, input_shapes)
    return load_onnx(path, input_shapes)


@dataclass
class QuantizeOptions:
    """`compile --quantize int8`: post-training quantization of a float model."""

    scheme: str = "int8"
    calib: "str | Path | list | None" = None  # .npy / .npz / folder, or a list of samples (per-sample input lists)
    calib_random: bool = False
    observer: str | None = None
    bias_correction: bool = True


def _quantize(graph: Graph, q: QuantizeOptions) -> tuple[Graph, dict]:
    from edgec.calibration import DEFAULT_OBSERVER, RANDOM_WARNING, load_calibration, random_calibration
    from edgec.errors import ModelError
    from edgec.passes import quantize_int8

    if q.scheme != "int8":
        raise ModelError(f"unknown quantization scheme '{q.scheme}' (int8 is supported)")
    if _pipeline_for(graph) == "int8":  # already integer (TFLite int8, QDQ/QOperator ONNX)
        if q.calib is not None or q.calib_random:
            raise ModelError("the model is already quantized: drop --calib / --calib-random")
        return graph, {"scheme": "already int8 (imported)"}
    names = list(graph.inputs)
    shapes = [graph.tensor(t).shape for t in names]
    if q.calib is None and not q.calib_random:
        raise ModelError("--quantize int8 needs calibration data: --calib samples.npz (or --calib-random for a quick, inaccurate try)")
    if isinstance(q.calib, list):
        samples = q.calib
    elif q.calib is not None:
        samples = load_calibration(q.calib, names, shapes)
    else:
        samples = random_calibration(shapes)
    graph = run_pipeline(graph, [r for r in quantize_int8.PASS.requires])
    sink: list = []
    cfg = quantize_int8.QuantizeConfig(samples, q.observer or DEFAULT_OBSERVER, q.bias_correction, q.calib is None)
    graph = quantize_int8.make_pass(cfg, sink)(graph)
    info = sink[0].to_json()
    if q.calib is None:
        info["warning"] = RANDOM_WARNING
    return graph, info


def _pipeline_for(graph: Graph) -> str:
    """Integer graphs (edgec.q ops, TFLite semantics) skip the float passes."""
    return "int8" if any(n.domain == "edgec.q" for n in graph.nodes) else "float"


def compile_model(
    model: str | Path,
    target: str | Target | None = "cortex-m7",
    *,
    input_shapes: dict | None = None,
    out_dir: str | Path | None = None,
    build: bool = True,
    flash_kb: float | None = None,
    ram_kb: float | None = None,
    progress: Progress | None = None,
    board: "str | Board | None" = None,
    harness: str = "edgec",
    quantize: "QuantizeOptions | None" = None,
    kernels: str = "auto",
) -> CompileResult:
    brd = _board(board)
    if brd is not None:
        target_name = target.name if isinstance(target, Target) else target
        if target_name not in (None, brd.target):
            raise TargetError(f"board {brd.name} has a {brd.target} CPU, not {target_name}; drop --target or pick another board")
        target = brd.target
        flash_kb = brd.flash_kb if flash_kb is None else flash_kb
        ram_kb = brd.ram_kb if ram_kb is None else ram_kb
    tgt = target if isinstance(target, Target) else load_target(target)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    say = progress or (lambda msg, done, total: None)

    say("loading model", 0, 1)
    graph = load_model(model, input_shapes)
    quant_info = None
    if quantize is not None:
        say("quantizing (calibration)", 0, 1)
        graph, quant_info = _quantize(graph, quantize)
    elif getattr(graph, "quantization", None) is not None:
        quant_info = graph.quantization
    if quant_info is None and _pipeline_for(graph) == "int8" and Path(model).suffix.lower() == ".onnx":
        quant_info = {"scheme": "imported quantized ONNX"}
    graph = run_pipeline(graph, _pipeline_for(graph))
    timings["frontend_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    layers, ks = build_layers(graph, f"edgec_{graph.name}", lambda i, n, what: say(f"kernel {what}", i, n), dsp=tgt.dsp,
                              prefer=kernels)
    timings["lowering_s"] = time.perf_counter() - t1
    plan = plan_memory(graph, {L.index: L.scratch_bytes for L in layers if L.scratch_bytes})
    files = generate(graph, layers, ks, plan, tgt.name).files

    totals = Totals(
        macs=sum(L.macs for L in layers),
        params=sum(L.params for L in layers),
        weight_bytes=sum(t.nbytes for t in graph.constants()),
        arena_bytes=plan.arena_size,
    )
    result = CompileResult(graph, layers, ks, plan, tgt, files, totals, None, timings, board=brd, quantization=quant_info)

    work = Path(tempfile.mkdtemp(prefix="edgec-"))
    try:
        src = work / "src"
        src.mkdir()
        for name, text in files.items():
            (src / name).write_text(text)
        if build:
            t2 = time.perf_counter()
            say(f"building with {tgt.compiler}", 0, 1)
            result.build = compile_objects(sorted(src / f for f in files if f.endswith(".c")), tgt, work / "obj", [src])
            timings["build_s"] = time.perf_counter() - t2
            _fill_sizes(result)
            check_budget(result, flash_kb, ram_kb)
        extra = {"source_model": str(model), "board": brd.name if brd else None, "totals": _totals_json(result)}
        if quant_info is not None:
            extra["quantization"] = dict(quant_info, io_layout="int8 C API; rank-4 inputs/outputs NHWC (ONNX NCHW transposed)")
        files["metadata.json"] = metadata(graph, layers, plan, tgt.name, extra)
        (src / "metadata.json").write_text(files["metadata.json"])
        if brd is not None and build:
            from edgec.build.firmware import build_firmware

            t3 = time.perf_counter()
            say(f"linking firmware for {brd.name}", 0, 1)
            result.firmware = build_firmware(result, brd, work / "fw", "mlperf" if harness == "mlperf-tiny" else harness)
            for f in ("firmware.elf", "firmware.bin", "firmware.map", "boot_stub.bin"):
                if (work / "fw" / f).exists():
                    shutil.copy2(work / "fw" / f, src / f)
            summary = result.firmware.summary()
            for k in ("elf", "bin", "map_file", "boot_stub"):  # the published folder has them side by side
                summary[k] = Path(summary[k]).name if summary[k] else None
            (src / "firmware.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
            timings["firmware_s"] = time.perf_counter() - t3
        if out_dir is not None:
            result.out_dir = _publish(src, Path(out_dir))
            if result.firmware is not None:  # point at the published copies (the work folder goes away)
                fw = result.firmware
                result.firmware = replace(
                    fw, elf=result.out_dir / fw.elf.name, bin=result.out_dir / fw.bin.name,
                    map_file=result.out_dir / fw.map_file.name,
                    boot_stub=(result.out_dir / fw.boot_stub.name) if fw.boot_stub else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timings["total_s"] = time.perf_counter() - t0
    return result


def _board(board: "str | Board | None") -> "Board | None":
    if board is None or not isinstance(board, str):
        return board
    from edgec.boards import load_board

    return load_board(board)


def _fill_sizes(r: CompileResult) -> None:
    b = r.build
    assert b is not None
    r.totals.flash_bytes = b.sizes.flash
    r.totals.ram_bytes = b.sizes.ram
    # worst case over the call graph of the run function (gcc -fcallgraph-info=su):
    # run's frame + the deepest kernel chain (e.g. conv -> GEMM); libc leaves count 0
    total, chain, _unknown = b.callgraph.worst_stack(f"edgec_{r.graph.name}_run")
    r.totals.max_stack_bytes = total
    # static functions appear as "<source path>:<name>" in gcc's call graph
    r.totals.max_stack_function = " -> ".join(fn.rsplit(":", 1)[-1] for fn in chain[1:]) or None


def budget(r: CompileResult, flash_kb: float | None, ram_kb: float | None) -> tuple[int, int]:
    return int((flash_kb if flash_kb is not None else r.target.flash_kb) * 1024), int(
        (ram_kb if ram_kb is not None else r.target.ram_kb) * 1024
    )


def check_budget(r: CompileResult, flash_kb: float | None, ram_kb: float | None) -> None:
    flash_limit, ram_limit = budget(r, flash_kb, ram_kb)
    problems = []
    if r.totals.flash_bytes is not None and r.totals.flash_bytes > flash_limit:
        problems.append(f"flash {r.totals.flash_bytes:,} B > budget {flash_limit:,} B")
    peak = r.totals.peak_sram_bytes
    if peak is not None and peak > ram_limit:
        problems.append(f"peak SRAM {peak:,} B (arena {r.totals.arena_bytes:,} B + other RAM + stack) > budget {ram_limit:,} B")
    if problems:
        raise BudgetError(f"model '{r.graph.name}' does not fit {r.target.name}: " + "; ".join(problems)
                          + " (override with --flash-kb / --ram-kb)")


def _totals_json(r: CompileResult) -> dict:
    t = r.totals
    return {
        "macs": t.macs,
        "params": t.params,
        "weight_bytes": t.weight_bytes,
        "arena_bytes": t.arena_bytes,
        "flash_bytes": t.flash_bytes,
        "ram_bytes": t.ram_bytes,
        "max_stack_bytes": t.max_stack_bytes,
        "max_stack_function": t.max_stack_function,
        "peak_sram_bytes": t.peak_sram_bytes,
        "compiler": r.build.compiler_version if r.build else None,
    }


def _publish(src: Path, dest: Path) -> Path:
    """Move the finished folder into place (replacing an older compile)."""
    dest = dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    shutil.rmtree(staged)
    shutil.copytree(src, staged)
    if dest.exists():
        old = dest.with_name(f".{dest.name}-old-{os.getpid()}")
        dest.rename(old)
        staged.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staged.rename(dest)
    return dest
