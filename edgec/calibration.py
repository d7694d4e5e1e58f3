"""Calibration data for post-training quantization, and the range observers.

Data: `.npy` (one input), `.npz` (arrays named after the model's inputs; a
one-input model also accepts the only array, or one named `x`, as in a
labelled `x`/`y` dataset file), or a folder of `.npy` files (one input; each
file one sample or a batch, concatenated in sorted file-name order). An array
holds one sample (the input's shape) or a batch of samples along a leading
axis; for a batch-1 input `(1, C, H, W)`, `(N, C, H, W)` is N samples too.
Float data only (the model's preprocessing applied); NaN/Inf, wrong shapes
and too few samples are one-line errors.

Observers (per activation tensor, streaming over the calibration samples):

* `minmax`: the exact min and max seen (TFLite's converter does this);
* `percentile`: the 0.01th / 99.99th percentiles (robust to outliers);
* `mse`: the clipping range [a*lo, a*hi] that minimises the mean squared
  int8 quantization error of the observed values (a searched over (0.3, 1]).

Percentile and MSE keep a uniform random reservoir of at most 2^18 values per
tensor (seeded: deterministic).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from edgec.errors import InputFileError, ModelError

MIN_SAMPLES = 10
DEFAULT_OBSERVER = "minmax"
RANDOM_SAMPLES = 32

log = logging.getLogger("edgec.calibration")


# ---- loading ----------------------------------------------------------------------------


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise InputFileError(f"cannot read calibration file {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def _arrays(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    if not path.exists():
        raise InputFileError(f"calibration data not found: {path}")
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise InputFileError(f"calibration folder {path} has no .npy files")
        if len(names) != 1:
            raise ModelError(f"a folder of .npy files calibrates one-input models; this model has inputs {names}: use an .npz")
        parts = [_read_npy(f) for f in files]
        return {names[0]: parts}  # type: ignore[dict-item]  # stacked by _samples
    if path.suffix.lower() == ".npz":
        from edgec.validate import read_npz

        data = read_npz(path, "calibration file")
        files = list(data)
        if all(n in data for n in names):
            return {n: data[n] for n in names}
        if len(names) == 1:
            if len(files) == 1:
                return {names[0]: data[files[0]]}
            if "x" in data:
                return {names[0]: data["x"]}
        missing = [n for n in names if n not in data]
        raise ModelError(f"{path.name} has arrays {files}, but no array for model input(s) {missing}")
    if path.suffix.lower() == ".npy":
        if len(names) != 1:
            raise ModelError(f"the model has {len(names)} inputs {names}: give an .npz with one array per input")
        return {names[0]: _read_npy(path)}
    raise InputFileError(f"calibration data must be .npy, .npz or a folder of .npy files (got {path.name})")


def _samples(name: str, a, shape: tuple[int, ...], where: str) -> np.ndarray:
    """(N, *shape) float32 array of samples."""
    parts = a if isinstance(a, list) else [a]
    out = []
    for k, p in enumerate(parts):
        p = np.asarray(p)
        if p.dtype == object or not (np.issubdtype(p.dtype, np.floating)):
            raise ModelError(f"calibration data for input '{name}' ({where}) has dtype {p.dtype}; float data expected "
                             "(apply the model's own preprocessing and save as float32)")
        if p.shape == shape:
            p = p[None]
        elif p.shape[1:] == shape:
            pass
        elif len(shape) >= 1 and shape[0] == 1 and p.shape == shape[1:]:  # one sample without its batch axis
            p = p.reshape((1,) + shape)
        elif len(shape) >= 1 and shape[0] == 1 and p.shape[1:] == shape[1:]:
            p = p.reshape((p.shape[0],) + shape)
        else:
            raise ModelError(f"calibration data for input '{name}' ({where}) has shape {p.shape}; expected {shape} "
                             f"or (N, {', '.join(map(str, shape))})"
                             + (f" or (N, {', '.join(map(str, shape[1:]))})" if shape and shape[0] == 1 else ""))
        out.append(p.astype(np.float32))
    x = np.concatenate(out) if len(out) > 1 else out[0]
    if not np.all(np.isfinite(x)):
        raise ModelError(f"calibration data for input '{name}' ({where}) contains NaN or Inf")
    return x


def load_calibration(path: str | Path, names: Sequence[str], shapes: Sequence[Sequence[int]],
                     min_samples: int = MIN_SAMPLES) -> list[list[np.ndarray]]:
    """Samples as a list of per-sample input lists, in the model's input order."""
    path = Path(path)
    arrays = _arrays(path, list(names))
    per_input = [_samples(n, arrays[n], tuple(int(d) for d in s), path.name) for n, s in zip(names, shapes)]
    counts = {x.shape[0] for x in per_input}
    if len(counts) != 1:
        raise ModelError(f"calibration inputs in {path.name} have different sample counts {sorted(counts)}")
    n = counts.pop()
    if n < min_samples:
        raise ModelError(f"calibration set {path.name} has {n} sample(s); at least {min_samples} are needed "
                         "(or pass --calib-random to calibrate on random data, which gives poor int8 accuracy)")
    return [[x[i] for x in per_input] for i in range(n)]


def random_calibration(shapes: Sequence[Sequence[int]], n: int = RANDOM_SAMPLES, seed: int = 0) -> list[list[np.ndarray]]:
    """Standard-normal samples: a placeholder that makes PTQ run, not an accurate calibration."""
    log.warning("calibrating on %d RANDOM samples: the int8 ranges will not match real data (accuracy will suffer)", n)
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(tuple(s)).astype(np.float32) for s in shapes] for _ in range(n)]


RANDOM_WARNING = ("WARNING: calibrating on RANDOM data (--calib-random): activation ranges do not come from real "
                  "inputs, expect a large accuracy loss; give --calib with representative samples")


# ---- observers ----------------------------------------------------------------------------


class Observer:
    name = "minmax"

    def __init__(self) -> None:
        self.lo = np.inf
        self.hi = -np.inf
        self.count = 0

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float32)
        if x.size == 0:
            return
        self.lo = min(self.lo, float(x.min()))
        self.hi = max(self.hi, float(x.max()))
        self.count += x.size

    def range(self) -> tuple[float, float]:
        if self.count == 0:
            return 0.0, 0.0
        return self.lo, self.hi


class MinMaxObserver(Observer):
    name = "minmax"


class _Sampled(Observer):
    CAP = 1 << 18

    def __init__(self) -> None:
        super().__init__()
        self._rng = np.random.default_rng(0)
        self._vals = np.empty(0, np.float32)
        self._keys = np.empty(0, np.float64)

    def update(self, x: np.ndarray) -> None:
        super().update(x)
        v = np.asarray(x, np.float32).reshape(-1)
        keys = self._rng.random(v.size)
        if self._keys.size >= self.CAP:  # only keys below the current threshold can enter
            thr = self._keys.max()
            keep = keys < thr
            v, keys = v[keep], keys[keep]
        vals = np.concatenate([self._vals, v])
        ks = np.concatenate([self._keys, keys])
        if ks.size > self.CAP:
            idx = np.argpartition(ks, self.CAP - 1)[: self.CAP]
            vals, ks = vals[idx], ks[idx]
        self._vals, self._keys = vals, ks


class PercentileObserver(_Sampled):
    name = "percentile"

    def __init__(self, percentile: float = 99.99) -> None:
        super().__init__()
        self.p = percentile

    def range(self) -> tuple[float, float]:
        if self.count == 0:
            return 0.0, 0.0
        lo, hi = np.percentile(self._vals.astype(np.float64), [100.0 - self.p, self.p])
        return float(lo), float(hi)


def qdq_error(v: np.ndarray, lo: float, hi: float) -> float:
    """Mean squared error of int8 asymmetric quantize-dequantize over [lo, hi]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / 255.0, 1e-12)
    zp = np.clip(np.round(-128 - lo / scale), -128, 127)
    qv = np.clip(np.round(v / scale) + zp, -128, 127)
    return float(np.mean(((qv - zp) * scale - v) ** 2))


class MSEObserver(_Sampled):
    name = "mse"
    GRID = np.linspace(0.3, 1.0, 71)

    def range(self) -> tuple[float, float]:
        if self.count == 0:
            return 0.0, 0.0
        v = self._vals.astype(np.float64)
        best = (np.inf, self.lo, self.hi)
        for a in self.GRID:
            e = qdq_error(v, a * self.lo, a * self.hi)
            if e < best[0] - 1e-18:
                best = (e, a * self.lo, a * self.hi)
        return best[1], best[2]


OBSERVERS = {"minmax": MinMaxObserver, "percentile": PercentileObserver, "mse": MSEObserver}


def make_observer(name: str) -> Observer:
    try:
        return OBSERVERS[name]()
    except KeyError:
        raise ModelError(f"unknown observer '{name}' (choose from {', '.join(OBSERVERS)})") from None


__all__ = ["MIN_SAMPLES", "DEFAULT_OBSERVER", "OBSERVERS", "RANDOM_WARNING", "load_calibration", "random_calibration",
           "make_observer", "Observer", "MinMaxObserver", "PercentileObserver", "MSEObserver", "qdq_error"]
