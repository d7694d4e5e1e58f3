"""`edgec validate`: the generated C (host build) against onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.errors import InputFileError, ModelError


@dataclass
class OutputError:
    name: str
    max_abs: float
    max_rel: float  # max |edgec - ref| / max |ref|
    cosine: float


@dataclass
class ValidationReport:
    model: str
    runs: int
    outputs: list[OutputError]
    tolerance: float
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.passed = all(o.max_rel <= self.tolerance for o in self.outputs)


def read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Every array of an .npz file (no pickles), or a one-line InputFileError naming `what` it is."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001
        raise InputFileError(f"cannot read {what} {path}: {type(e).__name__}") from None


def read_named_arrays(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """One array per model input from .npy (a one-input model) or .npz (by input name)."""
    if not path.exists():
        raise InputFileError(f"inputs file not found: {path}")
    try:
        data = np.load(path)
    except Exception as e:  # noqa: BLE001
        raise InputFileError(f"cannot read inputs {path}: {e}") from None
    if isinstance(data, np.ndarray):
        if len(names) != 1:
            raise ModelError(f"the model has {len(names)} inputs: give an .npz with arrays named {names}")
        return {names[0]: data}
    missing = [n for n in names if n not in data.files]
    if missing:
        raise ModelError(f"{path.name} lacks input(s) {missing} (has {data.files})")
    return {n: data[n] for n in names}


def load_inputs(path: Path, names: list[str], shapes: list[tuple[int, ...]]) -> list[list[np.ndarray]]:
    """Runs of inputs from .npy (one input; leading axis = runs if one more dim) or .npz (by name)."""
    arrays = read_named_arrays(path, names)
    per_input = []
    for n, s in zip(names, shapes):
        a = np.asarray(arrays[n], np.float32)
        if a.shape == tuple(s):
            a = a[None]
        if a.shape[1:] != tuple(s):
            raise ModelError(f"input '{n}' in {path.name} has shape {a.shape}, expected {tuple(s)} or (runs, *{tuple(s)})")
        per_input.append(a)
    runs = per_input[0].shape[0]
    return [[x[r] for x in per_input] for r in range(runs)]


def compare(model_path: Path, result, runs: int, inputs: Path | None, tolerance: float, seed: int = 0) -> ValidationReport:
    import onnxruntime as ort

    from edgec.hostrun import host_model_for

    g = result.graph
    shapes = [g.tensor(t).shape for t in g.inputs]
    if inputs is not None:
        batches = load_inputs(inputs, g.inputs, shapes)
    else:
        rng = np.random.default_rng(seed)
        batches = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(runs)]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    ort_inputs = [i.name for i in sess.get_inputs()]
    host = host_model_for(result)
    try:
        errs = [[0.0, 0.0, 1.0] for _ in g.outputs]
        for batch in batches:
            ours = host.run(batch)
            feed = dict(zip(g.inputs, batch))
            ref = sess.run(None, {n: feed[n] for n in ort_inputs})
            for k, (a, b) in enumerate(zip(ours, ref)):
                b = np.asarray(b, np.float32).reshape(a.shape)
                d = np.abs(a.astype(np.float64) - b)
                scale = max(float(np.abs(b).max()), 1e-30)
                errs[k][0] = max(errs[k][0], float(d.max()))
                errs[k][1] = max(errs[k][1], float(d.max()) / scale)
                denom = float(np.linalg.norm(a) * np.linalg.norm(b))
                cos = float(np.dot(a.ravel().astype(np.float64), b.ravel()) / denom) if denom > 0 else (1.0 if not d.any() else 0.0)
                errs[k][2] = min(errs[k][2], cos)
    finally:
        host.close()
    outs = [OutputError(name, *e) for name, e in zip(g.outputs, errs)]
    return ValidationReport(g.name, len(batches), outs, tolerance)
