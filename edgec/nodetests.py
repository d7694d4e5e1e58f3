"""Run the ONNX backend node tests through edgec's generated C.

    python -m edgec.nodetests [-k SUBSTRING] [--op Conv] [-j JOBS] [-v]

Every node test (one small model, its inputs and expected outputs) whose ops
are all known to edgec is compiled for the host with
`compile_model(model, "host", build=False)`, the generated C is built into a
shared library and run through ctypes (`edgec.hostrun`), and the outputs are
compared with the expected ones. A test counts as

* passed      - edgec compiled it and every output matches;
* unsupported - edgec rejected the model with `UnsupportedOpsError` or a
                `ModelError` about an unsupported feature (non-float32 runtime
                tensors, optional/sequence types, ...); reported as a skip,
                with edgec's reason;
* known bug   - listed in `KNOWN_FAILURES` (a bug outside the op bundles that
                is reported but not fixed yet); an expected failure;
* failed      - anything else: wrong numbers, or edgec crashed / raised an
                error that is not about an unsupported feature.

Where the tests come from. The onnx package used to ship the generated test
data (`onnx/backend/test/data/node/<test>/model.onnx` and
`test_data_set_*/{input,output}_*.pb`); when that folder exists it is used.
Recent onnx wheels no longer ship it, so otherwise the very same cases are
generated in memory by the generator that writes that folder
(`onnx.backend.test.case.node.collect_testcases()`, seed 0; ~9 s).

Static inputs. edgec needs the inputs an op reads at compile time (Reshape's
shape, Slice's starts/ends/axes/steps, Pad's pads, Resize's scales/sizes,
Clip's min/max, ReduceMean's axes, ...; `OpDef.static_inputs`) to be
constants. The node tests feed them as graph inputs, so before compiling, every
graph input that (directly or through other foldable nodes) feeds a static
input is baked into the model as an initializer holding the test's value for
it, and removed from the graph inputs. The remaining inputs are fed at run
time. Test data sets with different values for the baked inputs are compiled
separately.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

# ---- test cases ------------------------------------------------------------------

# Ops whose results must match bit for bit (data movement, comparisons, exact
# float operations): compared with atol = rtol = 0.
EXACT_OPS = frozenset({
    "Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat",
    "Slice", "Pad", "Relu", "Clip", "MaxPool", "Constant", "Shape", "Size",
})
RTOL = 1e-4
ATOL = 1e-5

# Node tests that fail because of a bug outside the op bundles (frontend,
# lowering, codegen, ...): name -> description. They run as expected failures
# (strict: a test listed here that passes is reported, so the entry is removed).
KNOWN_FAILURES: dict[str, str] = {}


@dataclass
class NodeCase:
    name: str
    model: onnx.ModelProto
    data_sets: list[tuple[list[np.ndarray], list[np.ndarray]]]

    @property
    def ops(self) -> list[str]:
        return sorted({n.op_type for n in self.model.graph.node})


def shipped_node_dir() -> Path:
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"


def _read_pb(path: Path) -> np.ndarray:
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def _load_dir(d: Path) -> NodeCase:
    model = onnx.load(str(d / "model.onnx"))
    sets = []
    for ds in sorted(d.glob("test_data_set_*")):
        ins = [_read_pb(p) for p in sorted(ds.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))]
        outs = [_read_pb(p) for p in sorted(ds.glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1]))]
        sets.append((ins, outs))
    return NodeCase(d.name, model, sets)


def _edgec_ops() -> frozenset[str]:
    from edgec.ops.registry import all_ops

    return frozenset(d.op for d in all_ops() if d.domain == "") | {"Constant"}


def _model_ops(model: onnx.ModelProto) -> set[tuple[str, str]]:
    return {(n.domain if n.domain != "ai.onnx" else "", n.op_type) for n in model.graph.node}


def _relevant(model: onnx.ModelProto, known: frozenset[str]) -> bool:
    ops = _model_ops(model)
    return bool(ops) and all(dom == "" and op in known for dom, op in ops)


@lru_cache(maxsize=1)
def _generated_cases() -> tuple:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return tuple(cases)


def _as_array(x) -> np.ndarray | None:
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, onnx.TensorProto):
        return numpy_helper.to_array(x)
    if isinstance(x, (np.generic, int, float, bool)):
        return np.asarray(x)
    return None  # sequences, maps, optionals: edgec has no such types


@lru_cache(maxsize=1)
def node_cases() -> tuple[NodeCase, ...]:
    """All node tests whose ops are all in edgec's registry (pre-filtered by op type)."""
    known = _edgec_ops()
    out = []
    d = shipped_node_dir()
    if d.is_dir() and any(d.iterdir()):
        for sub in sorted(d.iterdir()):
            if not (sub / "model.onnx").is_file():
                continue
            m = onnx.load(str(sub / "model.onnx"), load_external_data=False)
            if _relevant(m, known):
                out.append(_load_dir(sub))
        return tuple(out)
    for c in _generated_cases():
        if c.kind != "node" or c.model is None or not _relevant(c.model, known):
            continue
        sets = []
        for ins, outs in c.data_sets or ():
            sets.append(([_as_array(x) for x in ins], [_as_array(x) for x in outs]))
        out.append(NodeCase(c.name, c.model, sets))
    return tuple(sorted(out, key=lambda c: c.name))


def case_names(ops: Iterable[str] | None = None) -> list[str]:
    sel = set(ops) if ops is not None else None
    return [c.name for c in node_cases() if sel is None or sel & set(c.ops)]


def get_case(name: str) -> NodeCase:
    for c in node_cases():
        if c.name == name:
            return c
    raise KeyError(name)


# ---- static inputs ------------------------------------------------------------------

def static_tensors(model: onnx.ModelProto) -> set[str]:
    """Tensors whose values edgec needs at compile time: the static inputs of
    every node, and (transitively) everything they are computed from."""
    from edgec.ops.registry import lookup

    need: set[str] = set()
    for n in model.graph.node:
        d = lookup(n.op_type, n.domain)
        if d is None:
            continue
        for i in d.static_inputs:
            if i < len(n.input) and n.input[i]:
                need.add(n.input[i])
    changed = True
    while changed:
        changed = False
        for n in model.graph.node:
            if any(o in need for o in n.output if o):
                for i in n.input:
                    if i and i not in need:
                        need.add(i)
                        changed = True
    return need


def bake_static_inputs(model: onnx.ModelProto, inputs: Sequence[np.ndarray | None]) -> tuple[onnx.ModelProto, list[int]]:
    """A copy of `model` in which graph inputs feeding static inputs are
    initializers with the given values. Returns (model, indices of the graph
    inputs still fed at run time)."""
    need = static_tensors(model)
    graph_inputs = list(model.graph.input)
    baked = [k for k, vi in enumerate(graph_inputs) if vi.name in need and k < len(inputs) and inputs[k] is not None]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if not baked:
        return m, list(range(len(graph_inputs)))
    del m.graph.input[:]
    keep = []
    for k, vi in enumerate(graph_inputs):
        if k in baked:
            m.graph.initializer.append(numpy_helper.from_array(np.asarray(inputs[k]), vi.name))
        else:
            m.graph.input.append(vi)
            keep.append(k)
    return m, keep


# ---- running -------------------------------------------------------------------

@dataclass
class CaseResult:
    name: str
    ops: list[str]
    status: str  # "passed" | "failed" | "unsupported" | "known"
    reason: str = ""
    seconds: float = 0.0
    max_abs: float = 0.0
    details: list[str] = field(default_factory=list)


# ModelError messages that mean "edgec does not support this" (not a bug).
_UNSUPPORTED_MODEL_ERRORS = (
    "is not a tensor",            # sequence / optional / map inputs
    "has dtype",                  # non-float32 tensors
    "dtype",
    "not supported",
    "unsupported",
    "must be a constant",         # a static input computed at run time
    "opset",                      # outside the supported opset range
)


def _unsupported_reason(exc: Exception) -> str | None:
    from edgec.errors import ModelError, UnsupportedOpsError

    if isinstance(exc, UnsupportedOpsError):
        return "; ".join(f"{op}: {why}" for _, op, _, _, why in exc.nodes)
    if isinstance(exc, ModelError):
        msg = str(exc)
        if any(p in msg for p in _UNSUPPORTED_MODEL_ERRORS):
            return msg
    return None


def _tolerances(ops: Iterable[str]) -> tuple[float, float]:
    return (0.0, 0.0) if set(ops) <= EXACT_OPS else (RTOL, ATOL)


def _compare(name: str, got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> tuple[str | None, float]:
    want = np.asarray(want)
    if tuple(got.shape) != tuple(want.shape):
        return f"{name}: shape {tuple(got.shape)} != expected {tuple(want.shape)}", float("inf")
    if want.dtype.kind not in "fc":
        w = want.astype(np.float64)
    else:
        w = want.astype(np.float64)
    g = got.astype(np.float64)
    if w.size == 0:
        return None, 0.0
    both_nan = np.isnan(g) & np.isnan(w)
    d = np.where(both_nan, 0.0, np.abs(g - w))
    d = np.where(np.isinf(w) & (g == w), 0.0, d)
    bad = ~(d <= atol + rtol * np.abs(w))
    maxabs = float(np.nanmax(np.where(np.isnan(d), np.inf, d)))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return (f"{name}: {int(bad.sum())}/{w.size} elements differ (max abs err {maxabs:.3g}, "
                f"first at {idx}: got {g[idx]!r}, expected {w[idx]!r}; rtol={rtol}, atol={atol})"), maxabs
    return None, maxabs


def _compile(model: onnx.ModelProto, workdir: Path, tag: str):
    from edgec.compiler import compile_model

    path = workdir / f"{tag}.onnx"
    onnx.save(model, str(path))
    return compile_model(path, "host", build=False)


def run_case(case: NodeCase) -> CaseResult:
    """Compile and run one node test; never raises (failures are results)."""
    t0 = time.perf_counter()
    res = CaseResult(case.name, case.ops, "passed")
    try:
        _run_case(case, res)
    except Exception as e:  # noqa: BLE001 - an edgec crash is a failed test
        why = _unsupported_reason(e)
        if why is not None:
            res.status, res.reason = "unsupported", why
        else:
            res.status = "failed"
            res.reason = f"{type(e).__name__}: {' '.join(str(e).split())[:600]}"
    res.seconds = time.perf_counter() - t0
    if case.name in KNOWN_FAILURES:
        if res.status == "failed":
            res.status = "known"
            res.reason = f"known bug: {KNOWN_FAILURES[case.name]} ({res.reason})"
        elif res.status == "passed":
            res.status = "failed"
            res.reason = f"listed in KNOWN_FAILURES but passes now: remove the entry ({KNOWN_FAILURES[case.name]})"
    return res


def _run_case(case: NodeCase, res: CaseResult) -> None:
    from edgec.hostrun import host_model_for

    if not case.data_sets:
        raise RuntimeError("test has no data sets")
    for ins, _ in case.data_sets:
        for x in ins:
            if x is None:
                from edgec.errors import ModelError

                raise ModelError("a test input is a sequence / map / optional: not a tensor")
    rtol, atol = _tolerances(case.ops)
    compiled: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory(prefix="edgec-nodetest-") as tmp:
        work = Path(tmp)
        try:
            for k, (ins, outs) in enumerate(case.data_sets):
                model, keep = bake_static_inputs(case.model, ins)
                key = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
                if key not in compiled:
                    result = _compile(model, work, f"m{len(compiled)}")
                    g = result.graph
                    for t in list(g.inputs) + list(g.outputs):
                        dt = g.tensor(t).dtype
                        if dt != "float32":
                            from edgec.errors import ModelError

                            raise RuntimeError(
                                f"edgec accepted the model but graph {'input' if t in g.inputs else 'output'} "
                                f"'{t}' is {dt}; the generated C API is float32-only"
                            )
                    host = host_model_for(result, work / f"host{len(compiled)}")
                    compiled[key] = (result, host)
                result, host = compiled[key]
                g = result.graph
                feed = {case.model.graph.input[i].name: ins[i] for i in keep}
                # edgec keeps the model's input order; map by name
                names = [n for n in g.inputs]
                missing = [n for n in names if n not in feed]
                if missing:
                    raise RuntimeError(f"compiled model wants inputs {missing} the test does not give")
                got = host.run([np.asarray(feed[n], np.float32) for n in names])
                if len(got) != len(outs):
                    raise RuntimeError(f"{len(got)} outputs, expected {len(outs)}")
                for o, (a, want) in enumerate(zip(got, outs)):
                    msg, err = _compare(case.model.graph.output[o].name, a, want, rtol, atol)
                    res.max_abs = max(res.max_abs, err)
                    if msg:
                        res.details.append(f"data set {k}: {msg}")
            if res.details:
                res.status = "failed"
                res.reason = res.details[0]
        finally:
            for _, host in compiled.values():
                host.close()


def _run_named(name: str) -> CaseResult:
    return run_case(get_case(name))


def _worker_run(payload: bytes) -> CaseResult:
    import pickle

    return run_case(pickle.loads(payload))


def _warm() -> None:
    import edgec.compiler  # noqa: F401 - import TVM once in the fork server
    import edgec.hostrun  # noqa: F401
    from edgec.ops.registry import all_ops

    all_ops()


def run_cases(cases: Sequence[NodeCase], jobs: int | None = None, progress=None) -> list[CaseResult]:
    """Run cases, in `jobs` worker processes (default: the number of CPUs)."""
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    jobs = min(jobs, max(1, len(cases)))
    results: dict[str, CaseResult] = {}
    if jobs == 1:
        for c in cases:
            r = run_case(c)
            results[c.name] = r
            if progress:
                progress(r)
    else:
        import multiprocessing as mp
        import pickle
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["edgec.nodetests", "edgec.compiler", "edgec.hostrun"])
        # longest first (many ops / big data) keeps both workers busy to the end
        order = sorted(cases, key=lambda c: -len(c.model.SerializeToString()))
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_warm) as ex:
            futs = {ex.submit(_worker_run, pickle.dumps(c)): c for c in order}
            for f in as_completed(futs):
                c = futs[f]
                try:
                    r = f.result()
                except Exception as e:  # noqa: BLE001 - a worker died (segfault in generated C, ...)
                    r = CaseResult(c.name, c.ops, "failed", f"worker crashed: {type(e).__name__}: {e}")
                results[c.name] = r
                if progress:
                    progress(r)
    return [results[c.name] for c in cases]


# ---- summary ----------------------------------------------------------------------

STATUSES = ("passed", "failed", "unsupported", "known")


@dataclass
class Summary:
    results: list[CaseResult]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if r.status == "failed"]

    def per_op(self) -> dict[str, Counter]:
        per: dict[str, Counter] = defaultdict(Counter)
        for r in self.results:
            for op in r.ops:
                per[op][r.status] += 1
        return dict(sorted(per.items()))

    def text(self, verbose: bool = False) -> str:
        lines = []
        n = len(self.results)
        lines.append(
            f"ONNX node tests through edgec (host C): {n} run, {self.count('passed')} passed, "
            f"{self.count('failed')} failed, {self.count('unsupported')} skipped (unsupported), "
            f"{self.count('known')} known bugs (xfail)"
        )
        lines.append("")
        lines.append(f"{'op':<22}{'tests':>6}{'passed':>8}{'failed':>8}{'skipped':>9}{'known':>7}")
        for op, c in self.per_op().items():
            lines.append(f"{op:<22}{sum(c.values()):>6}{c['passed']:>8}{c['failed']:>8}{c['unsupported']:>9}{c['known']:>7}")
        fails = self.failures
        if fails:
            lines.append("")
            lines.append("FAILED:")
            for r in fails:
                lines.append(f"  {r.name}: {r.reason}")
        known = [r for r in self.results if r.status == "known"]
        if known:
            lines.append("")
            lines.append("known bugs (expected failures):")
            for r in known:
                lines.append(f"  {r.name}: {r.reason}")
        if verbose:
            lines.append("")
            lines.append("skipped (unsupported):")
            for r in self.results:
                if r.status == "unsupported":
                    lines.append(f"  {r.name}: {r.reason}")
        return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgec.nodetests", description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", dest="substr", action="append", default=[], help="only tests whose name contains this (repeatable)")
    ap.add_argument("--op", action="append", default=[], help="only tests using this op (repeatable)")
    ap.add_argument("-j", "--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    ap.add_argument("-v", "--verbose", action="store_true", help="also list skipped tests and their reasons")
    ap.add_argument("--progress", action="store_true", help="print each result as it arrives")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    cases = [c for c in node_cases()
             if (not args.op or set(args.op) & set(c.ops)) and (not args.substr or any(s in c.name for s in args.substr))]

    def progress(r: CaseResult) -> None:
        print(f"  {r.status:<11} {r.name} ({r.seconds:.2f} s){': ' + r.reason if r.status != 'passed' else ''}", flush=True)

    results = run_cases(cases, args.jobs, progress if args.progress else None)
    s = Summary(results)
    print(s.text(args.verbose))
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 1 if s.failures else 0


if __name__ == "__main__":
    sys.exit(main())
