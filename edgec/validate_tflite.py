"""`edgec validate model.tflite` / `edgec validate build/<m> --against tflite`:
edgec's integer C (host build) against TFLite Micro's own interpreter (the
semantics microcontrollers run) and LiteRT as a second reference.

Bit-exactness is the criterion against TFLite Micro. LiteRT is reported, not
required: its default int8 kernels round exact ties differently in some
layers (see docs/int8.md), and where the two disagree TFLite Micro wins."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.errors import InputFileError


@dataclass
class ReferenceResult:
    name: str
    compared: int = 0  # output bytes compared
    differing: int = 0
    max_lsb: int = 0  # largest |difference| in quantization steps
    available: bool = True
    note: str = ""


@dataclass
class TfliteReport:
    model: str
    runs: int
    references: list[ReferenceResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        tflm = self.references[0]
        return tflm.available and tflm.differing == 0

    def to_json(self) -> dict:
        return {"model": self.model, "runs": self.runs, "passed": self.passed,
                "references": [r.__dict__ for r in self.references]}


def _litert(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        return None
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    ins = [d["index"] for d in it.get_input_details()]
    outs = [d["index"] for d in it.get_output_details()]

    def run(xs):
        for i, x in zip(ins, xs):
            it.set_tensor(i, x)
        it.invoke()
        return [it.get_tensor(o) for o in outs]

    return run


def _tflm(path: Path):
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return None
    it = runtime.Interpreter.from_file(str(path))
    n_out = _n_outputs(path)

    def run(xs):
        for k, x in enumerate(xs):
            it.set_input(x, k)
        it.invoke()
        return [np.asarray(it.get_output(k)) for k in range(n_out)]

    return run


def _n_outputs(path: Path) -> int:
    from edgec.frontend.tflite_frontend import load_tflite

    return len(load_tflite(path).outputs)


def compare_tflite(model_path: Path, host, input_dtypes: list[str], runs: int, seed: int = 0,
                   inputs: list[list[np.ndarray]] | None = None) -> TfliteReport:
    """`host`: a HostModel of the generated C; inputs random in the dtype's range unless given."""
    if not model_path.exists():
        raise InputFileError(f"reference model not found: {model_path}")
    rng = np.random.default_rng(seed)
    if inputs is None:
        inputs = []
        for _ in range(runs):
            batch = []
            for s, dt in zip(host.input_shapes, input_dtypes):
                info = np.iinfo(dt)
                batch.append(rng.integers(info.min, info.max + 1, size=s, dtype=dt))
            inputs.append(batch)
    rep = TfliteReport(model_path.stem, len(inputs))
    for name, factory in (("TFLite Micro", _tflm), ("LiteRT (default kernels, no delegate)", _litert)):
        ref = factory(model_path)
        res = ReferenceResult(name)
        if ref is None:
            res.available, res.note = False, "not installed"
            rep.references.append(res)
            continue
        for batch in inputs:
            ours = host.run(batch)
            for a, b in zip(ours, ref(batch)):
                b = np.asarray(b).reshape(a.shape)
                d = np.abs(a.astype(np.int64) - b.astype(np.int64))
                res.compared += a.size
                res.differing += int(np.count_nonzero(d))
                res.max_lsb = max(res.max_lsb, int(d.max(initial=0)))
        rep.references.append(res)
    return rep


def print_tflite_validation(rep: TfliteReport, console) -> None:
    from rich.table import Table

    t = Table(title=f"{rep.model}: generated int8 C (host) vs TFLite interpreters, {rep.runs} random inputs", title_justify="left")
    for col in ("reference", "output values", "differing", "max |diff| (LSB)", "result"):
        t.add_column(col, justify="left" if col in ("reference", "result") else "right")
    for k, r in enumerate(rep.references):
        if not r.available:
            t.add_row(r.name, "-", "-", "-", r.note)
            continue
        verdict = ("[green]bit-exact[/]" if r.differing == 0 else "[red]differs[/]") if k == 0 else (
            "bit-exact" if r.differing == 0 else "differs (reported only; TFLite Micro is the reference)")
        t.add_row(r.name, f"{r.compared:,}", f"{r.differing:,}", str(r.max_lsb), verdict)
    console.print(t)
