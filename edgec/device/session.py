"""Run and profile a compiled model on a board through the serial link, and
compare with the host build of the same C (bit for bit) and the reference.

Tensors are dtype-generic: float32 and int8 (also uint8/int16/int32) graph
inputs and outputs move as raw bytes in the C API's element type; the build
folder's metadata.json gives dtype, shape and quantization."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgec.build.firmware import MODEL_FILES, runtime_file_names
from edgec.device.link import Link
from edgec.errors import EdgecError, InputFileError, ModelError


class WrongModelError(EdgecError):
    """The board runs another model than the build folder holds."""


@dataclass
class BuildFolder:
    path: Path
    meta: dict[str, Any]

    @classmethod
    def open(cls, path: Path) -> "BuildFolder":
        mp = path / "metadata.json"
        if not mp.exists():
            raise InputFileError(f"{path} is not an edgec build folder (no metadata.json); run `edgec compile ... -o {path}`")
        return cls(path, json.loads(mp.read_text()))

    @property
    def name(self) -> str:
        return self.meta["model"]

    def _c_files(self) -> dict[str, str]:
        """The model's C: model.c/.h, model_kernels.c/.h and the runtime_c kernel files of int8 models."""
        names = [f.name for f in self.path.iterdir() if f.is_file()]
        keep = [n for n in names if (n.startswith("model") and n.endswith((".c", ".h")))] + runtime_file_names(names)
        return {n: (self.path / n).read_text() for n in sorted(set(keep))}

    def model_hash(self) -> str:
        from edgec.build.firmware import model_hash

        files = self._c_files()
        missing = [f for f in MODEL_FILES if f not in files]
        if missing:
            raise InputFileError(f"{self.path} lacks {', '.join(missing)}; compile again")
        return model_hash(files)

    @property
    def board(self) -> str | None:
        return self.meta.get("board")

    def firmware(self) -> tuple[bytes, dict[str, Any]]:
        fw = self.path / "firmware.bin"
        if not fw.exists():
            raise InputFileError(f"{self.path} has no firmware: compile with --board, e.g. `edgec compile model.onnx --board qemu-m7 -o {self.path}`")
        return fw.read_bytes(), json.loads((self.path / "firmware.json").read_text())

    def input_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(t["shape"]) for t in self.meta["inputs"]]

    def output_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(t["shape"]) for t in self.meta["outputs"]]

    def input_dtypes(self) -> list[np.dtype]:
        return [np.dtype(t["dtype"]) for t in self.meta["inputs"]]

    def output_dtypes(self) -> list[np.dtype]:
        return [np.dtype(t["dtype"]) for t in self.meta["outputs"]]

    def quant(self, kind: str) -> list[tuple[float, int] | None]:
        """(scale, zero_point) per graph input ("inputs") or output ("outputs"), None if not quantized."""
        out = []
        for t in self.meta[kind]:
            s, z = t.get("scale"), t.get("zero_point")
            out.append((float(s), int(z)) if s is not None and z is not None and not isinstance(s, list) else None)
        return out

    def host_model(self):
        from edgec.hostrun import HostModel

        return HostModel(self._c_files(), self.name, self.input_shapes(), self.output_shapes(),
                         input_dtypes=[str(d) for d in self.input_dtypes()],
                         output_dtypes=[str(d) for d in self.output_dtypes()])


def random_inputs(build: BuildFolder, rng: np.random.Generator) -> list[np.ndarray]:
    """One random input set in the model's dtypes: standard normal floats, and
    uniform over the whole range for integer tensors (int8: -128..127)."""
    out = []
    for shape, dt in zip(build.input_shapes(), build.input_dtypes()):
        if np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            out.append(rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dt))
        else:
            out.append(rng.standard_normal(shape).astype(dt))
    return out


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Real values -> integers as TFLite does: round half away from zero of x / scale
    (float32 division), plus the zero point, clamped to the type's range."""
    q = np.float32(x) / np.float32(scale)
    q = np.where(q >= 0, np.floor(q + 0.5), np.ceil(q - 0.5)) + zero_point
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """(float)(q - zero_point) * scale in float32, as TFLite Micro's DequantizeInt8ToFloat."""
    return (q.astype(np.int32) - zero_point).astype(np.float32) * np.float32(scale)


def to_model_dtype(build: BuildFolder, k: int, x: np.ndarray, what: str = "input") -> np.ndarray:
    """Input k as the model's dtype: integer arrays are checked against the type's
    range; float arrays given to a quantized integer input are quantized with its
    scale and zero point; float arrays to a float input are cast."""
    dt = build.input_dtypes()[k]
    name = build.meta["inputs"][k]["name"]
    x = np.asarray(x)
    if np.issubdtype(dt, np.floating):
        return np.ascontiguousarray(x, dt)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        info = np.iinfo(dt)
        if x.size and (x.min() < info.min or x.max() > info.max):
            raise ModelError(f"{what} '{name}' has values in [{x.min()}, {x.max()}], outside {dt} [{info.min}, {info.max}]")
        return np.ascontiguousarray(x, dt)
    q = build.quant("inputs")[k]
    if q is None:
        raise ModelError(f"{what} '{name}' is {dt} without quantization parameters: give integer values, not {x.dtype}")
    return quantize(x, q[0], q[1], dt)


def check_board_model(link: Link, build: BuildFolder) -> dict[str, Any]:
    info = link.info()
    want = build.model_hash()
    if info.get("model_hash") != want or info.get("model") != build.name:
        raise WrongModelError(
            f"wrong model on the board: it runs '{info.get('model')}' (hash {info.get('model_hash')}), "
            f"{build.path} holds '{build.name}' (hash {want}); flash it first with `edgec flash {build.path} --port ...`"
        )
    return info


@dataclass
class BoardRun:
    outputs: list[np.ndarray]
    counter: int
    counter_unit: str
    info: dict[str, Any] = field(default_factory=dict)


def run_on_board(link: Link, build: BuildFolder, inputs: list[np.ndarray], info: dict[str, Any] | None = None) -> BoardRun:
    """Write the inputs (in the model's dtypes: see to_model_dtype), INVOKE, read the outputs."""
    info = info or check_board_model(link, build)
    for k, (x, shape) in enumerate(zip(inputs, build.input_shapes())):
        link.write_input(k, to_model_dtype(build, k, x).reshape(shape).tobytes())
    counter = link.invoke()
    outs = []
    for k, (shape, dt) in enumerate(zip(build.output_shapes(), build.output_dtypes())):
        n = int(np.prod(shape)) * dt.itemsize
        outs.append(np.frombuffer(link.read_output(k, n), dt).reshape(shape).copy())
    return BoardRun(outs, counter, info.get("counter", "counts"), info)


# --- inputs from files ------------------------------------------------------------


def load_run_inputs(build: BuildFolder, path: Path) -> list[list[np.ndarray]]:
    """Runs of inputs from .npy (one input; an optional leading runs axis) or .npz (by
    input name), converted to the model's dtypes (to_model_dtype: integer values are
    range-checked, float values for a quantized int8 input are quantized)."""
    from edgec.validate import read_named_arrays

    names = [t["name"] for t in build.meta["inputs"]]
    shapes = build.input_shapes()
    arrays = read_named_arrays(path, names)
    per_input = []
    for k, (n, s) in enumerate(zip(names, shapes)):
        a, s = np.asarray(arrays[n]), tuple(s)
        runs = _as_runs(a, s)
        if runs is None and len(s) == 4 and _nhwc_api(build):
            # an ONNX (NCHW) array for the int8 C API's NHWC input
            runs = _as_runs(a, (s[0], s[3], s[1], s[2]))
            runs = None if runs is None else np.moveaxis(runs, 2, -1)
        if runs is None:
            raise ModelError(f"input '{n}' in {path.name} has shape {a.shape}, expected {s} or (runs, *{s})"
                             + (" (or runs in place of the batch dimension of 1)" if s and s[0] == 1 else ""))
        a = runs
        per_input.append(to_model_dtype(build, k, a, f"input in {path.name}"))
    runs = {a.shape[0] for a in per_input}
    if len(runs) != 1:
        raise ModelError(f"the inputs in {path.name} have different numbers of runs: {sorted(runs)}")
    return [[x[r] for x in per_input] for r in range(runs.pop())]


def _as_runs(a: np.ndarray, s: tuple[int, ...]) -> np.ndarray | None:
    """`a` as (runs, *s): one sample of shape s, a leading runs axis, or runs in place of a batch dimension of 1."""
    if a.shape == s:
        return a[None]
    if a.shape[1:] == s:
        return a
    if s and s[0] == 1 and a.ndim == len(s) and a.shape[1:] == s[1:]:
        return a[:, None]
    return None


def _nhwc_api(build: BuildFolder) -> bool:
    """Int8 models from ONNX take NHWC inputs where the ONNX model is NCHW (metadata's quantization.io_layout)."""
    return "NHWC" in str((build.meta.get("quantization") or {}).get("io_layout", ""))


# --- the reference the board is compared with ---------------------------------------


@dataclass
class Reference:
    """The source model run by its reference runtime: TFLite Micro (the TFLM Python
    interpreter: TFLite Micro's own kernels, the semantics edgec's int8 C is bit-exact
    with) for .tflite, onnxruntime for .onnx."""

    name: str
    run: Any  # (inputs in the model's dtypes) -> outputs
    exact: bool  # integer outputs must equal the board's bit for bit


def reference_for(build: BuildFolder) -> Reference | None:
    """The reference for the build folder's source model, if the file is still there
    and its runtime is installed; else None."""
    src = build.meta.get("source_model")
    if not src or not Path(src).exists():
        return None
    if src.lower().endswith(".tflite"):
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError:
            return None
        interp = runtime.Interpreter.from_file(src)

        def run_tflm(batch: list[np.ndarray]) -> list[np.ndarray]:
            for k, x in enumerate(batch):
                interp.set_input(np.ascontiguousarray(x), k)
            interp.invoke()
            return [np.asarray(interp.get_output(k)).copy() for k in range(len(build.meta["outputs"]))]

        return Reference("TFLite Micro", run_tflm, True)
    if src.lower().endswith(".onnx"):
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
        ort_inputs = sess.get_inputs()
        names = [t["name"] for t in build.meta["inputs"]]
        quants = build.quant("inputs")

        def feed_for(batch: list[np.ndarray]) -> dict[str, np.ndarray]:
            feed = {}
            for i, oi in enumerate(ort_inputs):
                k = names.index(oi.name) if oi.name in names else i
                x = np.asarray(batch[k])
                shape = [d if isinstance(d, int) else None for d in (oi.shape or [])]
                if x.ndim == 4 and len(shape) == 4 and not _shape_ok(x.shape, shape) and \
                        _shape_ok(x.transpose(0, 3, 1, 2).shape, shape):
                    x = x.transpose(0, 3, 1, 2)  # the int8 C API is NHWC, the ONNX model NCHW
                t = oi.type
                if t == "tensor(float)":
                    x = dequantize(x, *quants[k]) if np.issubdtype(x.dtype, np.integer) and quants[k] else x.astype(np.float32)
                elif t == "tensor(uint8)" and x.dtype == np.int8:
                    x = (x.astype(np.int16) + 128).astype(np.uint8)
                elif t == "tensor(int8)":
                    x = x.astype(np.int8)
                feed[oi.name] = np.ascontiguousarray(x)
            return feed

        def run_ort(batch: list[np.ndarray]) -> list[np.ndarray]:
            return [np.asarray(o) for o in sess.run(None, feed_for(batch))]

        return Reference("onnxruntime", run_ort, False)
    return None


def _shape_ok(have: tuple[int, ...], want: list[int | None]) -> bool:
    return len(have) == len(want) and all(w is None or w == h for h, w in zip(have, want))


@dataclass
class ReferenceComparison:
    bytes_differing: int | None  # integer reference outputs: bytes of the board's outputs that differ
    max_steps: float | None  # largest difference in steps of the output's quantization scale (quantized outputs)
    max_abs_error: float | None  # float reference outputs: max |board - reference| (int8 outputs dequantized)


def compare_with_reference(build: BuildFolder, outputs: list[np.ndarray], want: list[np.ndarray]) -> ReferenceComparison:
    quants = build.quant("outputs")
    nbytes = steps = None
    err = None
    for a, w, q in zip(outputs, want, quants):
        w = np.asarray(w)
        if w.shape != a.shape and w.ndim == 4 and w.transpose(0, 2, 3, 1).shape == a.shape:
            w = w.transpose(0, 2, 3, 1)  # NCHW reference, NHWC int8 C API
        w = w.reshape(a.shape)
        if np.issubdtype(w.dtype, np.integer) and np.issubdtype(a.dtype, np.integer):
            if w.dtype == np.uint8 and a.dtype == np.int8:
                w = (w.astype(np.int16) - 128)
            w = w.astype(a.dtype)
            nbytes = (nbytes or 0) + int(np.count_nonzero(a.reshape(-1).view(np.uint8) != w.reshape(-1).view(np.uint8)))
            d = int(np.abs(a.astype(np.int64) - w.astype(np.int64)).max()) if a.size else 0
            steps = max(steps or 0, d)
        else:
            af = dequantize(a, *q) if np.issubdtype(a.dtype, np.integer) and q else a.astype(np.float64)
            e = float(np.abs(af.astype(np.float64) - w.astype(np.float64)).max()) if a.size else 0.0
            err = e if err is None else max(err, e)
            if np.issubdtype(a.dtype, np.integer) and q:
                steps = max(steps or 0.0, e / q[0])
    return ReferenceComparison(nbytes, steps, err)
