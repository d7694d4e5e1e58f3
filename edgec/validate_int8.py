"""`edgec validate` for int8 models compiled from ONNX.

Three references for the generated C (host build, integer in, integer out):

* edgec's own NumPy integer reference of the same edgec.q graph: must be
  bit-exact (it is the definition of what the kernels compute);
* onnxruntime running the **same quantized model** (QDQ / QOperator imports):
  every output within `tolerance` quantization steps (default 2), with a
  histogram of |difference| in steps;
* onnxruntime running the **float model** (PTQ, `--quantize int8`): top-1
  agreement on classifier outputs, the difference in output steps (printed),
  and with labelled data (`--dataset x/y .npz`, or `--labels`) the accuracy of
  both and the drop, which must stay within `max_accuracy_drop` points.

Inputs are float, in the ONNX model's layout (NCHW). They are quantized with
the C API's input parameters (round half to even, as QuantizeLinear), and
the imported model's onnxruntime session receives the dequantized values, so
both sides see identical integers. Rank-4 C API tensors are NHWC.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.errors import InputFileError, ModelError
from edgec.passes.to_nhwc_int8 import from_api, run_reference, to_api

DEFAULT_STEPS = 2.0
DEFAULT_MIN_AGREEMENT = 0.9
DEFAULT_MAX_DROP = 1.0
_NUMPY_CHECK_RUNS = 50


@dataclass
class Int8Output:
    name: str
    max_steps: int
    histogram: dict[int, int]  # |difference| in output quantization steps -> count
    compared: int


@dataclass
class Int8ValidationReport:
    model: str
    mode: str  # "imported" (vs onnxruntime on the quantized model) | "ptq" (vs the float model)
    runs: int
    tolerance: float  # steps (imported mode)
    outputs: list[Int8Output]
    numpy_runs: int
    numpy_differing_bytes: int
    top1_agreement: float | None = None
    accuracy_float: float | None = None
    accuracy_int8: float | None = None
    labelled: int = 0
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    max_accuracy_drop: float = DEFAULT_MAX_DROP
    quantization: dict | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def accuracy_drop(self) -> float | None:
        if self.accuracy_float is None or self.accuracy_int8 is None:
            return None
        return 100.0 * (self.accuracy_float - self.accuracy_int8)

    @property
    def passed(self) -> bool:
        return not self.failures

    def judge(self) -> None:
        f = []
        if self.numpy_differing_bytes:
            f.append(f"the C output differs from edgec's NumPy integer reference in {self.numpy_differing_bytes} byte(s)")
        if self.mode == "imported":
            for o in self.outputs:
                if o.max_steps > self.tolerance:
                    f.append(f"output '{o.name}' differs from onnxruntime by {o.max_steps} quantization steps "
                             f"(> {self.tolerance:g})")
        else:
            if self.accuracy_drop is not None and self.accuracy_drop > self.max_accuracy_drop:
                f.append(f"int8 accuracy {100 * self.accuracy_int8:.2f}% is {self.accuracy_drop:.2f} points below the float "
                         f"model's {100 * self.accuracy_float:.2f}% (> {self.max_accuracy_drop:g})")
            if self.top1_agreement is not None and self.top1_agreement < self.min_agreement:
                f.append(f"top-1 agreement with the float model {100 * self.top1_agreement:.1f}% < {100 * self.min_agreement:.0f}%")
        self.failures = f

    def to_json(self) -> dict:
        return {
            "model": self.model, "mode": self.mode, "runs": self.runs, "passed": self.passed, "failures": self.failures,
            "tolerance_steps": self.tolerance,
            "numpy_reference": {"runs": self.numpy_runs, "differing_bytes": self.numpy_differing_bytes},
            "outputs": [{"name": o.name, "max_steps": o.max_steps, "compared": o.compared,
                         "histogram_steps": {str(k): v for k, v in sorted(o.histogram.items())}} for o in self.outputs],
            "top1_agreement": self.top1_agreement, "accuracy_float": self.accuracy_float,
            "accuracy_int8": self.accuracy_int8, "accuracy_drop_points": self.accuracy_drop, "labelled": self.labelled,
            "quantization": self.quantization,
        }


def load_dataset(path: Path, names: list[str], shapes: list[tuple[int, ...]], labels: Path | None = None):
    """(batches, labels or None): an .npz with `x` (or arrays by input name) and `y`, or
    inputs from validate.load_inputs plus a labels .npy."""
    from edgec.validate import load_inputs, read_npz

    if not path.exists():
        raise InputFileError(f"dataset not found: {path}")
    y = None
    if path.suffix.lower() == ".npz":
        data = read_npz(path, "dataset")
        if len(names) == 1 and names[0] not in data and "x" in data:
            data[names[0]] = data["x"]
        missing = [n for n in names if n not in data]
        if missing:
            raise ModelError(f"{path.name} has arrays {list(data)}, none for input(s) {missing} (expected 'x' and 'y')")
        per = []
        for n, s in zip(names, shapes):
            a = np.asarray(data[n])
            if not np.issubdtype(a.dtype, np.floating):
                raise ModelError(f"dataset array for input '{n}' has dtype {a.dtype}; float expected")
            a = a.astype(np.float32)
            if a.shape == tuple(s):
                a = a[None]
            elif s and s[0] == 1 and a.shape[1:] == tuple(s[1:]):
                a = a.reshape((a.shape[0],) + tuple(s))
            if a.shape[1:] != tuple(s):
                raise ModelError(f"dataset array for input '{n}' has shape {a.shape}; expected (N, {', '.join(map(str, s))})")
            per.append(a)
        batches = [[x[r] for x in per] for r in range(per[0].shape[0])]
        if "y" in data:
            y = np.asarray(data["y"]).reshape(-1)
    else:
        batches = load_inputs(path, names, shapes)
    if labels is not None:
        try:
            y = np.asarray(np.load(labels, allow_pickle=False)).reshape(-1)
        except Exception as e:  # noqa: BLE001
            raise InputFileError(f"cannot read labels {labels}: {type(e).__name__}") from None
    if y is not None:
        if not np.issubdtype(y.dtype, np.integer):
            raise ModelError(f"labels have dtype {y.dtype}; integer class indices expected")
        if y.size != len(batches):
            raise ModelError(f"{y.size} labels for {len(batches)} input samples")
    return batches, y


def _quantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.clip(np.rint(x.astype(np.float32) / np.float32(scale)) + zp, -128, 127).astype(np.int8)


def compare_int8(model_path: Path, result, runs: int, inputs: Path | None, tolerance: float | None, seed: int = 0,
                 dataset: Path | None = None, labels: Path | None = None, min_agreement: float | None = None,
                 max_accuracy_drop: float | None = None) -> Int8ValidationReport:
    import onnxruntime as ort

    from edgec.hostrun import host_model_for

    g = result.graph
    mode = "ptq" if (result.quantization or {}).get("scheme", "").startswith("int8 PTQ") else "imported"
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    s_ins = sess.get_inputs()
    if len(s_ins) != len(g.inputs):
        raise ModelError(f"onnxruntime sees {len(s_ins)} inputs, edgec {len(g.inputs)}")
    onnx_shapes = [tuple(int(d) if isinstance(d, int) and d > 0 else 1 for d in i.shape) for i in s_ins]
    names = [i.name for i in s_ins]
    # the edgec API inputs keep the ONNX input names, in the same order
    in_q = [(float(g.tensor(t).quant.scale[0]), int(g.tensor(t).quant.zero_point[0])) for t in g.inputs]
    out_q = [(float(g.tensor(t).quant.scale[0]), int(g.tensor(t).quant.zero_point[0])) for t in g.outputs]
    y = None
    if dataset is not None:
        batches, y = load_dataset(dataset, names, onnx_shapes, labels)
    elif inputs is not None:
        from edgec.validate import load_inputs

        batches = load_inputs(inputs, names, onnx_shapes)
        if labels is not None:
            _, y = load_dataset(inputs, names, onnx_shapes, labels)
    else:
        if labels is not None:
            raise ModelError("--labels needs --inputs (the labelled samples)")
        rng = np.random.default_rng(seed)
        batches = [[rng.standard_normal(s).astype(np.float32) for s in onnx_shapes] for _ in range(runs)]
    host = host_model_for(result)
    hists = [collections.Counter() for _ in g.outputs]
    numpy_runs = numpy_diff = 0
    agree = agree_n = 0
    correct_f = correct_q = 0
    try:
        for r, batch in enumerate(batches):
            qx = [_quantize(x, s, z) for x, (s, z) in zip(batch, in_q)]
            api_in = [to_api(x) for x in qx]
            ours_api = host.run(api_in)
            if r < _NUMPY_CHECK_RUNS:
                ref_api = run_reference(g, api_in)
                numpy_runs += 1
                numpy_diff += sum(int(np.count_nonzero(a.reshape(-1) != b.reshape(-1))) for a, b in zip(ours_api, ref_api))
            feed = {}
            for k, (i, x, q, (s, z)) in enumerate(zip(s_ins, batch, qx, in_q)):
                if i.type == "tensor(uint8)":
                    feed[i.name] = (q.astype(np.int16) + 128).astype(np.uint8)
                elif i.type == "tensor(int8)":
                    feed[i.name] = q
                elif mode == "imported":
                    feed[i.name] = ((q.astype(np.float32) - z) * np.float32(s)).astype(np.float32)
                else:
                    feed[i.name] = x.astype(np.float32)
            refs = sess.run(None, feed)
            for k, (o, ref, (s, z)) in enumerate(zip(ours_api, refs, out_q)):
                ours = from_api(o).astype(np.int64)
                ref = np.asarray(ref)
                if ref.dtype == np.uint8:
                    ref_q = ref.astype(np.int64) - 128
                elif ref.dtype == np.int8:
                    ref_q = ref.astype(np.int64)
                else:
                    ref_q = np.clip(np.rint(ref.astype(np.float64) / s) + z, -128, 127).astype(np.int64)
                d = np.abs(ours.reshape(-1) - ref_q.reshape(-1))
                hists[k].update(collections.Counter(d.tolist()))
                if k == 0 and ref.ndim >= 1 and ref.shape[-1] > 1 and ref.size == ref.shape[-1]:
                    ours_f = (ours.reshape(-1).astype(np.float64) - z) * s
                    ref_f = ref.reshape(-1).astype(np.float64) if ref.dtype.kind == "f" else (ref_q.reshape(-1) - z) * s
                    agree += int(np.argmax(ours_f) == np.argmax(ref_f))
                    agree_n += 1
                    if y is not None:
                        correct_f += int(np.argmax(ref_f) == int(y[r]))
                        correct_q += int(np.argmax(ours_f) == int(y[r]))
    finally:
        host.close()
    outs = [Int8Output(name, max(h) if h else 0, dict(sorted(h.items())), sum(h.values())) for name, h in zip(g.outputs, hists)]
    rep = Int8ValidationReport(
        g.name, mode, len(batches), DEFAULT_STEPS if tolerance is None else float(tolerance), outs, numpy_runs, numpy_diff,
        top1_agreement=(agree / agree_n) if agree_n else None,
        accuracy_float=(correct_f / len(batches)) if y is not None and agree_n else None,
        accuracy_int8=(correct_q / len(batches)) if y is not None and agree_n else None,
        labelled=len(batches) if y is not None else 0,
        min_agreement=DEFAULT_MIN_AGREEMENT if min_agreement is None else min_agreement,
        max_accuracy_drop=DEFAULT_MAX_DROP if max_accuracy_drop is None else max_accuracy_drop,
        quantization=result.quantization)
    rep.judge()
    return rep


def histogram_rows(h: dict[int, int], width: int = 40) -> list[tuple[str, str, str, str]]:
    """(steps, count, share, bar) rows; differences above 4 steps are grouped."""
    total = max(sum(h.values()), 1)
    rows, big = [], 0
    for k in range(0, 5):
        c = h.get(k, 0)
        rows.append((str(k), f"{c:,}", f"{100 * c / total:.2f}%", "#" * int(round(width * c / total))))
    big = sum(c for k, c in h.items() if k > 4)
    if big:
        rows.append((">4", f"{big:,}", f"{100 * big / total:.2f}%", "#" * int(round(width * big / total))))
    return rows


def print_int8_validation(rep: Int8ValidationReport, console) -> None:
    from rich.table import Table

    ref = ("onnxruntime on the same quantized model" if rep.mode == "imported" else "onnxruntime on the float model")
    console.print(f"[bold]{rep.model}[/]: int8 C (host build) vs {ref}, {rep.runs} input(s)")
    nd = rep.numpy_differing_bytes
    console.print(f"  vs edgec's NumPy integer reference ({rep.numpy_runs} runs): "
                  + ("[green]bit-exact[/]" if nd == 0 else f"[red]{nd} bytes differ[/]"))
    for o in rep.outputs:
        t = Table(title=f"output '{o.name}': |edgec - reference| in output quantization steps, {o.compared:,} values, "
                        f"max {o.max_steps}",
                  title_justify="left")
        for col in ("steps", "count", "share", ""):
            t.add_column(col, justify="right" if col != "" else "left")
        for row in histogram_rows(o.histogram):
            t.add_row(*row)
        console.print(t)
    if rep.top1_agreement is not None:
        console.print(f"  top-1 agreement with the reference: {100 * rep.top1_agreement:.1f}%")
    if rep.accuracy_float is not None:
        console.print(f"  accuracy on {rep.labelled} labelled samples: float {100 * rep.accuracy_float:.2f}%, "
                      f"int8 {100 * rep.accuracy_int8:.2f}% (drop {rep.accuracy_drop:+.2f} points, allowed {rep.max_accuracy_drop:g})")
    crit = (f"every output within {rep.tolerance:g} steps" if rep.mode == "imported"
            else f"top-1 agreement >= {100 * rep.min_agreement:.0f}%" + (f", accuracy drop <= {rep.max_accuracy_drop:g} points"
                                                                          if rep.accuracy_float is not None else ""))
    if rep.passed:
        console.print(f"[green]PASS[/] ({crit})")
    else:
        console.print(f"[red]FAIL[/] ({crit}): " + "; ".join(rep.failures))


__all__ = ["compare_int8", "print_int8_validation", "Int8ValidationReport", "load_dataset", "DEFAULT_STEPS"]
