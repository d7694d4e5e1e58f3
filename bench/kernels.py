"""Instructions per layer of the int8 kernels (runtime_c/kernels) on the emulated Cortex-M7.

Each MLPerf Tiny int8 model is turned into a bare-metal program that runs every layer
through the kernels exactly as edgec's generated code calls them (same kernel choice as
edgec/ops/quantized.py, parameters from edgec/qmath.py, the model's weights, a random
input), built with the cortex-m7 target flags and run on QEMU mps2-an500. A TCG plugin
(bench/qemu_plugin/insn_count.c, shared with bench/int8.py) counts the executed instructions between marks placed
around every kernel call: exact emulated instruction counts, no sampling. Every layer's
output is hashed on the board and compared with TFLite Micro's tensor for the same input
(the host `tflite_micro` interpreter), so the numbers are only reported for kernels that
are bit-exact on the real ARM code path (inline assembly included).

    .venv/bin/python bench/kernels.py                       # all models, DSP path
    .venv/bin/python bench/kernels.py --models vww resnet   # some of them
    .venv/bin/python bench/kernels.py --portable            # force the portable C path
    .venv/bin/python bench/kernels.py --kernels-ref HEAD    # the kernels of a git revision
    .venv/bin/python bench/kernels.py --layers --json out.json
    .venv/bin/python bench/kernels.py --profile             # + instructions per function
    .venv/bin/python bench/kernels.py --no-dead-channels    # compute pruned channels too

Needs arm-none-eabi-gcc, qemu-system-arm, host gcc, and the `tflite` / `tflite_micro`
packages of the test environment. Numbers are emulated instructions (QEMU), not cycles.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(__file__).resolve().parent / "kernel_harness"
PLUGIN_SRC = Path(__file__).resolve().parent / "qemu_plugin" / "insn_count.c"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import kernel_harness as H  # noqa: E402
from edgec import qmath  # noqa: E402
from edgec.ops.quantized import pruned_pointwise_eligible  # noqa: E402
from edgec.targets import load_target  # noqa: E402

MODELS = {"kws": "kws_ref_model", "vww": "vww_96_int8", "resnet": "pretrainedResnet_quant", "ad01": "ad01_int8"}
# TFLite Micro + CMSIS-NN on the same emulator, instructions per inference (docs/DESIGN.md).
TFLM_CMSIS_NN = {"kws": 7.65e6, "vww": 24.0e6, "resnet": 30.0e6, "ad01": 0.58e6}


class BenchError(RuntimeError):
    pass


@dataclass
class LayerResult:
    index: int
    op: str
    kind: str  # category for the summary table
    desc: str
    kernel: str
    macs: int
    instructions: int = 0
    exact: bool = False


@dataclass
class ModelResult:
    name: str
    layers: list[LayerResult] = field(default_factory=list)
    text_bytes: int = 0

    @property
    def instructions(self) -> int:
        return sum(l.instructions for l in self.layers)

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)


# --- C emission ---------------------------------------------------------------------------


def _c_array(ctype: str, name: str, values: np.ndarray, const: bool) -> str:
    vals = np.asarray(values).reshape(-1)
    body = ",".join(str(int(v)) for v in vals) if vals.size else "0"
    q = "const " if const else ""
    return f"static {q}{ctype} {name}[{max(vals.size, 1)}] __attribute__((aligned(8))) = {{{body}}};\n"


def _dims(shape) -> str:
    s = [1] * (4 - len(shape)) + [int(d) for d in shape]
    return "{%d, %d, %d, %d}" % tuple(s)


class ModelProgram:
    """The C program running one model layer by layer through the kernels."""

    def __init__(self, model: H.TfliteModel, x: np.ndarray, portable: bool, prune: bool = True):
        self.model = model
        self.prune = prune  # pruned pointwise layers as the compiler emits them
        self.decls: list[str] = []
        self.calls: list[str] = []
        self.buffers: dict[int, str] = {}
        self.results: list[LayerResult] = []
        self.scratch = 0
        self.portable = portable
        self.nstatic = 0
        T = model.tensors
        for t in T:
            if t.data is not None:
                ctype = "int32_t" if t.data.dtype == np.int32 else "int8_t"
                if t.data.dtype not in (np.int32, np.int8):
                    continue
                self.decls.append(_c_array(ctype, f"t{t.index}", t.data, True))
                self.buffers[t.index] = f"t{t.index}"
        xin = model.inputs[0]
        self.decls.append(_c_array("int8_t", f"t{xin}", x, False))
        self.buffers[xin] = f"t{xin}"
        for layer in model.layers:
            self._layer(layer)

    def _buf(self, idx: int) -> str:
        if idx not in self.buffers:
            n = int(np.prod(self.model.tensors[idx].shape))
            self.decls.append(f"static int8_t t{idx}[{n}] __attribute__((aligned(8)));\n")
            self.buffers[idx] = f"t{idx}"
        return self.buffers[idx]

    def _static(self, ctype: str, init: str) -> str:
        self.nstatic += 1
        name = f"s{self.nstatic}"
        self.decls.append(f"static const {ctype} {name} = {init};\n")
        return "&" + name

    def _quant(self, mult, shift, per_channel: bool) -> str:
        return self._static("edgec_quant_params", f"{{{self._array('int32_t', mult)}, {self._array('int32_t', shift)}, {int(per_channel)}}}")

    def _array(self, ctype: str, values) -> str:
        self.nstatic += 1
        name = f"a{self.nstatic}"
        self.decls.append(_c_array(ctype, name, np.asarray(values, dtype=np.int64), True))
        return name

    def _pruned(self, w, bias_idx: int | None, mult, shift, out_zp: int, lo: int, hi: int):
        """(filter, bias, quant, channel map) of a pruned pointwise layer, or None (edgec/ops/quantized.py's rule)."""
        ci = w.shape[3]
        if not self.prune or not pruned_pointwise_eligible(ci, lo, hi, not self.portable):
            return None
        bias = self.model.tensors[bias_idx].data if bias_idx is not None else None
        pc = qmath.pruned_channels(w, bias, mult, shift, out_zp, lo, hi)
        if pc.dead.size == 0:
            return None
        live = pc.live
        cmap = self._static("edgec_channel_map", f"{{{live.size}, {self._array('int16_t', live)}, {pc.dead.size}, "
                            f"{self._array('int16_t', pc.dead)}, {self._array('int8_t', pc.dead_value)}}}")
        b = self._array("int32_t", bias[live]) if bias is not None else "0"
        return self._array("int8_t", w[live]), b, self._quant(mult[live], shift[live], True), cmap, live.size

    def _layer(self, layer: H.Layer) -> None:
        m, T, o, op = self.model, self.model.tensors, layer.options, layer.op
        out_t = T[layer.outputs[0]]
        ins = [i for i in layer.inputs]
        if op == "RESHAPE":
            self.buffers[layer.outputs[0]] = self._buf(ins[0])
            return
        y = self._buf(layer.outputs[0])
        res = LayerResult(layer.index, op, op.lower(), "", "", 0)
        if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            in_t, w_t = T[ins[0]], T[ins[1]]
            w = w_t.data
            bias = self.buffers.get(ins[2], "0") if len(ins) > 2 and ins[2] >= 0 else "0"
            xs = in_t.shape
            sh, sw, dh, dw = o.StrideH(), o.StrideW(), o.DilationHFactor(), o.DilationWFactor()
            pad = H._PADDING[o.Padding()]
            oh, ph, _ = qmath.compute_padding(pad, xs[1], w.shape[1], sh, dh)
            ow, pw, _ = qmath.compute_padding(pad, xs[2], w.shape[2], sw, dw)
            cout = w.shape[0] if op == "CONV_2D" else w.shape[3]
            mult, shift = qmath.conv_quant_params(in_t.scale, w_t.scales, out_t.scale, cout)
            q = self._quant(mult, shift, True)
            lo, hi = H._act_range(o.FusedActivationFunction(), out_t)
            kh, kw = w.shape[1], w.shape[2]
            od = (xs[0], oh, ow, cout)
            if op == "CONV_2D":
                params = self._static("edgec_conv_params", f"{{{-in_t.zero_point}, {out_t.zero_point}, {{{sh}, {sw}}}, "
                                      f"{{{ph}, {pw}}}, {{{dh}, {dw}}}, {lo}, {hi}}}")
                ci = w.shape[3]
                pointwise = (kh, kw) == (1, 1) and (sh, sw) == (1, 1) and (ph, pw) == (0, 0) and ci == xs[3]
                pruned = None
                if pointwise:
                    bidx = ins[2] if len(ins) > 2 and ins[2] >= 0 else None
                    pruned = self._pruned(w, bidx, mult, shift, out_t.zero_point, lo, hi)
                    fn, scratch = "edgec_convolve_1x1_s8", qmath.convolve_1x1_s8_buffer_size(ci, dsp=True)
                    res.kind = "conv 1x1"
                else:
                    fn, scratch = "edgec_convolve_s8", qmath.convolve_s8_buffer_size(kh, kw, ci, dsp=True)
                    res.kind = "conv 1x1 strided" if (kh, kw) == (1, 1) else (
                        "conv first layer" if xs[3] <= 3 else f"conv {kh}x{kw}")
                self.scratch = max(self.scratch, scratch)
                if pruned is not None:
                    filt, pbias, pq, cmap, nlive = pruned
                    fn = "edgec_convolve_1x1_pruned_s8"
                    res.kind = "conv 1x1 pruned"
                    self.calls.append(f"{fn}(scratch, {params}, {pq}, {cmap}, {self._static('edgec_dims', _dims(xs))}, "
                                      f"{self._buf(ins[0])}, {self._static('edgec_dims', _dims((nlive, 1, 1, ci)))}, "
                                      f"{filt}, {pbias}, {self._static('edgec_dims', _dims(od))}, {y})")
                else:
                    self.calls.append(f"{fn}(scratch, {params}, {q}, {self._static('edgec_dims', _dims(xs))}, "
                                      f"{self._buf(ins[0])}, {self._static('edgec_dims', _dims(w.shape))}, "
                                      f"t{ins[1]}, {bias}, {self._static('edgec_dims', _dims(od))}, {y})")
                res.macs = oh * ow * cout * kh * kw * ci * xs[0]
                res.desc = f"{kh}x{kw} {xs[3]}->{cout} s{sh} {xs[1]}x{xs[2]}"
            else:
                dm = o.DepthMultiplier() or cout // xs[3]
                params = self._static("edgec_dw_conv_params", f"{{{-in_t.zero_point}, {out_t.zero_point}, "
                                      f"{{{sh}, {sw}}}, {{{ph}, {pw}}}, {{{dh}, {dw}}}, {dm}, {lo}, {hi}}}")
                fn = "edgec_depthwise_conv_s8"
                self.calls.append(f"{fn}({params}, {q}, {self._static('edgec_dims', _dims(xs))}, "
                                  f"{self._buf(ins[0])}, {self._static('edgec_dims', _dims(w.shape))}, "
                                  f"t{ins[1]}, {bias}, {self._static('edgec_dims', _dims(od))}, {y})")
                res.macs = oh * ow * cout * kh * kw * xs[0]
                res.kind = f"depthwise {kh}x{kw} s{sh}"
                res.desc = f"{kh}x{kw} {xs[3]} ch s{sh} {xs[1]}x{xs[2]}"
            res.kernel = fn
        elif op == "FULLY_CONNECTED":
            in_t, w_t = T[ins[0]], T[ins[1]]
            units, depth = w_t.shape
            batches = int(np.prod(in_t.shape)) // depth
            bias = self.buffers.get(ins[2], "0") if len(ins) > 2 and ins[2] >= 0 else "0"
            mult, shift, per_channel = qmath.fc_quant_params(in_t.scale, w_t.scales, out_t.scale)
            lo, hi = H._act_range(o.FusedActivationFunction(), out_t)
            params = self._static("edgec_fc_params", f"{{{-in_t.zero_point}, {-w_t.zero_point}, "
                                  f"{out_t.zero_point}, {lo}, {hi}}}")
            q = self._quant(mult, shift, per_channel)
            self.calls.append(f"edgec_fully_connected_s8({params}, {q}, {batches}, {depth}, {units}, "
                              f"{self._buf(ins[0])}, t{ins[1]}, {bias}, {y})")
            res.macs = batches * units * depth
            res.kind, res.kernel, res.desc = "fully connected", "edgec_fully_connected_s8", f"{depth}->{units}"
        elif op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            xs = T[ins[0]].shape
            fh, fw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
            pad = H._PADDING[o.Padding()]
            oh, ph, _ = qmath.compute_padding(pad, xs[1], fh, sh)
            ow, pw, _ = qmath.compute_padding(pad, xs[2], fw, sw)
            lo, hi = H._act_range(o.FusedActivationFunction(), out_t)
            params = self._static("edgec_pool_params", f"{{{{{sh}, {sw}}}, {{{ph}, {pw}}}, {{{fh}, {fw}}}, {lo}, {hi}}}")
            kind = "avg" if op == "AVERAGE_POOL_2D" else "max"
            fn = f"edgec_{kind}pool_s8"
            self.calls.append(f"{fn}({params}, {self._static('edgec_dims', _dims(xs))}, {self._buf(ins[0])}, "
                              f"{self._static('edgec_dims', _dims((xs[0], oh, ow, xs[3])))}, {y})")
            res.kind, res.kernel, res.desc = "pool", fn, f"{fh}x{fw} {xs[1]}x{xs[2]}x{xs[3]}"
        elif op == "SOFTMAX":
            in_t = T[ins[0]]
            p = qmath.softmax_params(in_t.scale, o.Beta())
            row = in_t.shape[-1]
            rows = int(np.prod(in_t.shape)) // row
            self.calls.append(f"edgec_softmax_s8({self._buf(ins[0])}, {rows}, {row}, {p.input_multiplier}, "
                              f"{p.input_left_shift}, {p.diff_min}, {y})")
            res.kind, res.kernel, res.desc = "softmax", "edgec_softmax_s8", f"{rows}x{row}"
        elif op == "ADD":
            a_t, b_t = T[ins[0]], T[ins[1]]
            act = o.FusedActivationFunction() if o is not None else 0
            p = qmath.add_params(a_t.scale, a_t.zero_point, b_t.scale, b_t.zero_point, out_t.scale,
                                 out_t.zero_point, act)
            fields = ", ".join(str(int(getattr(p, f))) for f, _ in H.AddParams._fields_)
            params = self._static("edgec_add_params", "{" + fields + "}")
            n1, n2 = int(np.prod(a_t.shape)), int(np.prod(b_t.shape))
            self.calls.append(f"edgec_add_s8({params}, {self._buf(ins[0])}, {n1}, {self._buf(ins[1])}, {n2}, {y})")
            res.kind, res.kernel, res.desc = "add", "edgec_add_s8", f"{max(n1, n2)} elements"
        else:
            raise BenchError(f"layer {layer.index}: no kernel mapping for {op}")
        res.desc = f"{res.desc}" if res.desc else op
        self.results.append(res)
        self.out_index = getattr(self, "out_index", [])
        self.out_index.append((layer.outputs[0], y, int(np.prod(out_t.shape))))

    def source(self) -> str:
        lines = ['#include "edgec_kernels_s8.h"\n', '#include "bench.h"\n',
                 f"static int64_t scratch_store[{max(self.scratch, 8) // 8 + 1}];\n",
                 "static void *const scratch = scratch_store;\n"]
        lines += self.decls
        lines.append("int main(void)\n{\n    int32_t status = 0;\n")
        lines.append("    bench_mark();\n    bench_mark();\n")  # calibration: an empty window
        for c in self.calls:
            lines.append(f"    status |= {c};\n    bench_mark();\n")
        lines.append('    bench_puts(status ? "status error\\n" : "status ok\\n");\n')
        for _, buf, n in self.out_index:
            lines.append(f'    bench_puts("hash "); bench_put_hex32(bench_fnv1a({buf}, {n})); bench_puts("\\n");\n')
        lines.append("    return status ? 1 : 0;\n}\n")
        return "".join(lines)


# --- build and run ------------------------------------------------------------------------


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise BenchError(f"{cmd[0]} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def build_plugin(work: Path) -> Path:
    so = work / "libinsn_count.so"
    _run(["gcc", "-shared", "-fPIC", "-O2", "-o", so, PLUGIN_SRC])
    return so


def build_firmware(work: Path, source: str, kernels: Path, portable: bool,
                   extra_defines: tuple[str, ...] = ()) -> tuple[Path, int]:
    work.mkdir(parents=True, exist_ok=True)
    (work / "model.c").write_text(source)
    cflags = list(load_target("cortex-m7").cflags)
    defines = (["-DEDGEC_KERNELS_PORTABLE"] if portable else []) + [f"-D{d}" for d in extra_defines]
    objs = []
    for src in sorted(kernels.glob("*.c")):
        obj = work / (src.stem + ".o")
        _run(["arm-none-eabi-gcc", *cflags, *defines, "-I", kernels / "include", "-I", kernels, "-c", src, "-o", obj])
        objs.append(obj)
    kobjs = list(objs)
    for src in (HARNESS / "startup.c", work / "model.c"):
        obj = work / (src.stem + ".o")
        _run(["arm-none-eabi-gcc", *cflags, "-I", kernels / "include", "-I", HARNESS, "-c", src, "-o", obj])
        objs.append(obj)
    elf = work / "bench.elf"
    _run(["arm-none-eabi-gcc", *cflags, "-nostartfiles", "--specs=nosys.specs", "-T", HARNESS / "link.ld",
          "-Wl,--gc-sections", "-o", elf, *objs])
    size = _run(["arm-none-eabi-size", "-t", *kobjs]).stdout.strip().splitlines()[-1].split()
    return elf, int(size[0])


def _function_table(elf: Path) -> list[tuple[int, int, str]]:
    rows = []
    for line in _run(["arm-none-eabi-nm", "-S", "-n", elf]).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            rows.append((int(parts[0], 16) & ~1, int(parts[1], 16), parts[3]))
    return rows


def profile_by_function(elf: Path, log: Path) -> list[tuple[str, int]]:
    """Executed instructions per function, from the plugin's per-block counts."""
    import bisect

    funcs = _function_table(elf)
    starts = [f[0] for f in funcs]
    totals: dict[str, int] = {}
    for line in log.read_text().splitlines():
        if not line.startswith("insn_count: tb "):
            continue
        _, _, addr, n, runs = line.split()
        a = int(addr, 16)
        i = bisect.bisect_right(starts, a) - 1
        name = funcs[i][2] if i >= 0 and a < funcs[i][0] + max(funcs[i][1], 1) else f"?{a:#x}"
        totals[name] = totals.get(name, 0) + int(n) * int(runs)
    return sorted(totals.items(), key=lambda kv: -kv[1])


def run_firmware(elf: Path, plugin: Path, work: Path, profile: bool = False) -> tuple[list[int], list[str]]:
    nm = _run(["arm-none-eabi-nm", elf]).stdout
    m = re.search(r"^([0-9a-f]+) T bench_mark$", nm, re.M)
    if not m:
        raise BenchError("bench_mark not found in the ELF")
    addr = int(m.group(1), 16) & ~1
    log = work / "plugin.log"
    console = work / "console.txt"
    p = subprocess.run(["qemu-system-arm", "-M", "mps2-an500", "-cpu", "cortex-m7", "-nographic", "-monitor", "none",
                        "-serial", "none", "-chardev", f"file,id=semi,path={console}",
                        "-semihosting-config", "enable=on,target=native,chardev=semi", "-kernel", str(elf),
                        "-plugin", f"{plugin},mark={addr:#x},profile={int(profile)}", "-d", "plugin", "-D", str(log)],
                       capture_output=True, text=True, timeout=600)
    out = console.read_text().splitlines() if console.is_file() else []
    if p.returncode != 0:
        raise BenchError(f"QEMU exit {p.returncode}: {p.stdout[-2000:]} {p.stderr[-2000:]}")
    marks = [int(l.split()[2]) for l in log.read_text().splitlines() if l.startswith("insn_count: mark ")]
    return marks, out


def bench_model(key: str, kernels: Path, plugin: Path, work: Path, portable: bool, seed: int = 1,
                profile: bool = False, extra_defines: tuple[str, ...] = ()) -> ModelResult:
    path = H.MLPERF_DIR / f"{MODELS[key]}.tflite"
    model = H.TfliteModel(path)
    x = H.random_input(model, seed)
    prog = ModelProgram(model, x, portable, prune="EDGEC_KERNELS_NO_DEAD_CHANNELS" not in extra_defines)
    elf, text = build_firmware(work / key, prog.source(), kernels, portable, extra_defines)
    marks, out = run_firmware(elf, plugin, work / key, profile)
    if profile:
        print(f"\n{key}: instructions per function (whole run, incl. the harness)")
        for name, n in profile_by_function(elf, work / key / "plugin.log")[:40]:
            print(f"  {n:11d}  {name}")
    if "status ok" not in out:
        raise BenchError(f"{key}: a kernel returned an error: {out}")
    overhead = marks[1] - marks[0]
    counts = [b - a - overhead for a, b in zip(marks[1:], marks[2:])]
    hashes = [l.split()[1] for l in out if l.startswith("hash ")]
    ref, _ = H.tflm_layer_io(path, x, [i for i, _, _ in prog.out_index])
    res = ModelResult(key, text_bytes=text)
    for lr, n, h, (idx, _, size) in zip(prog.results, counts, hashes, prog.out_index):
        lr.instructions = n
        ref_bytes = np.ascontiguousarray(ref[idx]).astype(np.int8).tobytes()
        hv = 2166136261
        for b in ref_bytes:
            hv = ((hv ^ b) * 16777619) & 0xFFFFFFFF
        lr.exact = f"{hv:08x}" == h
        res.layers.append(lr)
    return res


def _kernels_from_ref(ref: str, work: Path) -> Path:
    dest = work / f"kernels_{re.sub(r'[^A-Za-z0-9]', '_', ref)}"
    dest.mkdir(parents=True, exist_ok=True)
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "runtime_c/kernels"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar.stdout, check=True)
    return dest / "runtime_c" / "kernels"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--portable", action="store_true", help="build with -DEDGEC_KERNELS_PORTABLE")
    ap.add_argument("--kernels", type=Path, default=ROOT / "runtime_c" / "kernels", help="kernel source folder")
    ap.add_argument("--kernels-ref", help="benchmark the kernels of this git revision instead")
    ap.add_argument("--layers", action="store_true", help="print every layer")
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    ap.add_argument("--profile", action="store_true", help="also print instructions per function")
    ap.add_argument("--no-dead-channels", action="store_true",
                    help="compute pruned (all-zero) channels too: no pruned kernel, and the kernels built with "
                         "-DEDGEC_KERNELS_NO_DEAD_CHANNELS (also for --kernels-ref revisions older than the pruned kernel)")
    ap.add_argument("--work", type=Path, help="build folder (default: a temporary one)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="edgec_kbench_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        kernels = _kernels_from_ref(args.kernels_ref, work) if args.kernels_ref else args.kernels
        plugin = build_plugin(work)
        results = []
        for key in args.models:
            r = bench_model(key, kernels, plugin, work, args.portable, profile=args.profile,
                            extra_defines=("EDGEC_KERNELS_NO_DEAD_CHANNELS",) if args.no_dead_channels else ())
            results.append(r)
            if args.layers:
                print(f"\n{key}: layer  op  shape  MACs  instructions  MACs/instr  bit-exact")
                for l in r.layers:
                    mpi = f"{l.macs / l.instructions:.3f}" if l.macs else "-"
                    print(f"  {l.index:3d} {l.kind:18s} {l.desc:26s} {l.macs:9d} {l.instructions:10d} {mpi:>6s} "
                          f"{'ok' if l.exact else 'DIFF'}")
        print("\nper layer type (all models): MACs, instructions, MACs/instruction")
        kinds: dict[str, list[int]] = {}
        for r in results:
            for l in r.layers:
                k = kinds.setdefault(l.kind, [0, 0])
                k[0] += l.macs
                k[1] += l.instructions
        for k, (macs, n) in sorted(kinds.items()):
            print(f"  {k:22s} {macs:10d} {n:11d} {macs / n if n else 0:6.3f}")
        print("\nwhole model (kernels only): instructions, MACs/instruction, vs TFLM+CMSIS-NN, bit-exact layers")
        for r in results:
            bad = sum(not l.exact for l in r.layers)
            print(f"  {r.name:7s} {r.instructions:10d} {r.macs / r.instructions:6.3f}  "
                  f"{TFLM_CMSIS_NN[r.name] / r.instructions:5.2f}x fewer  "
                  f"{len(r.layers) - bad}/{len(r.layers)} exact")
        print(f"kernel library .text (all kernels, cortex-m7 -O2): {results[0].text_bytes} bytes")
        if args.json:
            args.json.write_text(json.dumps([{"model": r.name, "instructions": r.instructions, "macs": r.macs,
                                              "layers": [asdict(l) for l in r.layers]} for r in results], indent=1))
        return 0 if all(l.exact for r in results for l in r.layers) else 1


if __name__ == "__main__":
    sys.exit(main())
