"""TFLite (.tflite flatbuffer) -> edgec IR, int8 models, TFLite semantics.

Every TFLite operator of subgraph 0 becomes one node of domain "edgec.q"
(edgec/ops/quantized.py) in TFLite's native layout (NHWC activations, OHWI
conv filters, 1HW(C*M) depthwise filters, (units, depth) FC weights). What
TFLite computes in an op's `Prepare` is resolved here, at import, into explicit
node attributes: pads (SAME padding computed exactly as TFLite does), strides,
dilations, depth multiplier, zero points, fixed-point requantization
multipliers/shifts and the integer clamp of the fused activation. Tensors keep
their dtype (int8 activations and weights, int32 biases) and QuantParams.

Errors: a missing, unreadable, garbage or truncated file is an InputFileError
(the flatbuffer is bounds-checked before anything is read from it); every
operator edgec cannot run is collected and reported at once in an
UnsupportedOpsError (node name, TFLite op, domain 'tflite', opset = the
model's schema version).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgec import qmath
from edgec.errors import EdgecError, InputFileError, ModelError, UnsupportedOpsError
from edgec.ir import Graph, Node, QuantParams, Tensor
from edgec.ops import quantized as q
from edgec.ops.registry import lookup

SCHEMA_VERSION = 3
DOMAIN = q.DOMAIN

try:  # the flatbuffer schema bindings (PyPI `tflite`)
    import tflite as _tfl
except ImportError:  # pragma: no cover - reported when a .tflite is actually loaded
    _tfl = None


# =============================================================================
# Flatbuffer verification: bounds-check every table/vector/string we will read
# =============================================================================

class _Corrupt(Exception):
    pass


# field index -> kind; kinds: ("s", size) scalar, ("v", elem) vector of scalars,
# ("str",), ("t", schema) table, ("tv", schema) vector of tables, ("u", type_field) union
_SCHEMA: dict[str, dict[int, tuple]] = {
    "Model": {0: ("s", 4), 1: ("tv", "OperatorCode"), 2: ("tv", "SubGraph"), 4: ("tv", "Buffer")},
    "OperatorCode": {0: ("s", 1), 1: ("str",), 2: ("s", 4), 3: ("s", 4)},
    "SubGraph": {0: ("tv", "Tensor"), 1: ("v", 4), 2: ("v", 4), 3: ("tv", "Operator"), 4: ("str",)},
    "Tensor": {0: ("v", 4), 1: ("s", 1), 2: ("s", 4), 3: ("str",), 4: ("t", "QuantizationParameters"),
               5: ("s", 1), 6: ("t", None), 7: ("v", 4)},
    "QuantizationParameters": {2: ("v", 4), 3: ("v", 8), 4: ("s", 1), 6: ("s", 4)},
    "Operator": {0: ("s", 4), 1: ("v", 4), 2: ("v", 4), 3: ("s", 1), 4: ("u", 3), 5: ("v", 1), 8: ("v", 4)},
    "Buffer": {0: ("v", 1), 1: ("s", 8), 2: ("s", 8)},
    # builtin options: scalar fields only, except these vectors
    "ReshapeOptions": {0: ("v", 4)},
}


class _Verifier:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.n = len(buf)
        self.visited = 0
        self.option_names = (
            {v: k for k, v in vars(_tfl.BuiltinOptions).items() if not k.startswith("_")} if _tfl else {}
        )

    def need(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or size < 0 or pos + size > self.n:
            raise _Corrupt(f"{what} at byte {pos} (+{size}) lies outside the {self.n}-byte file")

    def u8(self, pos):
        self.need(pos, 1, "byte")
        return self.buf[pos]

    def u16(self, pos):
        self.need(pos, 2, "vtable entry")
        return struct.unpack_from("<H", self.buf, pos)[0]

    def u32(self, pos):
        self.need(pos, 4, "offset")
        return struct.unpack_from("<I", self.buf, pos)[0]

    def i32(self, pos):
        self.need(pos, 4, "offset")
        return struct.unpack_from("<i", self.buf, pos)[0]

    def vector(self, pos: int, elem: int, what: str) -> int:
        count = self.u32(pos)
        self.need(pos + 4, count * elem, f"{what} ({count} elements)")
        return count

    def table(self, pos: int, schema: str | None) -> None:
        self.visited += 1
        if self.visited > 4 * self.n:  # cannot reach more objects than bytes
            raise _Corrupt("object graph larger than the file")
        vt = pos - self.i32(pos)
        vt_size = self.u16(vt)
        obj_size = self.u16(vt + 2)
        if vt_size < 4 or vt_size % 2 or obj_size < 4:
            raise _Corrupt(f"bad vtable at byte {vt}")
        self.need(vt, vt_size, "vtable")
        self.need(pos, obj_size, f"{schema or 'table'} object")
        fields = _SCHEMA.get(schema or "", {})
        slots = [self.u16(vt + 4 + 2 * i) for i in range((vt_size - 4) // 2)]
        for i, off in enumerate(slots):
            if off == 0:
                continue
            if off >= obj_size:
                raise _Corrupt(f"field {i} of {schema or 'table'} at byte {pos} lies outside its object")
            kind = fields.get(i)
            if kind is None:
                continue
            fpos = pos + off
            if kind[0] == "s":
                if off + kind[1] > obj_size:
                    raise _Corrupt(f"scalar field {i} of {schema} overruns its object")
                continue
            if off + 4 > obj_size:
                raise _Corrupt(f"offset field {i} of {schema} overruns its object")
            if kind[0] == "u":
                toff = slots[kind[1]] if kind[1] < len(slots) else 0
                typ = self.u8(pos + toff) if toff else 0
                name = self.option_names.get(typ)
                self.table(fpos + self.u32(fpos), name)
                continue
            target = fpos + self.u32(fpos)
            if kind[0] == "v":
                self.vector(target, kind[1], f"vector field {i} of {schema}")
            elif kind[0] == "str":
                self.vector(target, 1, "string")
            elif kind[0] == "t":
                self.table(target, kind[1])
            elif kind[0] == "tv":
                count = self.vector(target, 4, f"{kind[1]} list")
                for k in range(count):
                    p = target + 4 + 4 * k
                    self.table(p + self.u32(p), kind[1])

    def model(self) -> None:
        self.table(self.u32(0), "Model")


# =============================================================================
# Reading the flatbuffer into plain Python records
# =============================================================================

_DTYPES = {
    "FLOAT32": "float32", "FLOAT16": "float16", "FLOAT64": "float64", "INT8": "int8", "UINT8": "uint8",
    "INT16": "int16", "UINT16": "uint16", "INT32": "int32", "UINT32": "uint32", "INT64": "int64",
    "UINT64": "uint64", "BOOL": "bool",
}
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


@dataclass
class _TTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type_name: str  # TFLite TensorType name
    dtype: str | None  # numpy dtype name, None when edgec has none (STRING, RESOURCE, INT4, ...)
    data: np.ndarray | None
    quant: QuantParams | None
    is_variable: bool = False
    sparse: bool = False
    custom_quant: bool = False


@dataclass
class _TOp:
    index: int
    op: str  # BUILTIN name, or the custom code
    version: int
    inputs: list[int]
    outputs: list[int]
    options: Any = None  # an initialised tflite.*Options object, or None
    options_name: str = ""
    custom: bool = False
    intermediates: int = 0


@dataclass
class _TModel:
    version: int
    description: str
    tensors: list[_TTensor]
    ops: list[_TOp]
    inputs: list[int]
    outputs: list[int]
    n_subgraphs: int
    subgraph_name: str = ""


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputFileError(f"model file not found: {path}")
    if not path.is_file():
        raise InputFileError(f"not a file: {path}")
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputFileError(f"cannot read {path}: {e.strerror or e}") from None


def _parse(buf: bytes, path: Path) -> _TModel:
    if _tfl is None:  # pragma: no cover
        raise InputFileError("reading .tflite needs the `tflite` package (pip install tflite==2.18.0)")
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        hint = " (it looks like an ONNX/protobuf file)" if buf[:1] == b"\x08" else ""
        raise InputFileError(f"{path.name} is not a TFLite model: no 'TFL3' flatbuffer identifier{hint}")
    try:
        _Verifier(buf).model()
    except (_Corrupt, struct.error, RecursionError) as e:
        raise InputFileError(f"{path.name} is not a valid TFLite model (truncated or corrupt: {e})") from None
    try:
        return _extract(buf)
    except EdgecError:
        raise
    except Exception as e:  # noqa: BLE001 - anything the bounds check let through
        raise InputFileError(f"{path.name} is not a valid TFLite model (corrupt: {type(e).__name__}: {e})") from None


def _np(x) -> np.ndarray:
    """tflite's *AsNumpy returns the int 0 for an absent vector."""
    return x if isinstance(x, np.ndarray) else np.zeros(0)


def _extract(buf: bytes) -> _TModel:
    t = _tfl
    m = t.Model.GetRootAs(buf, 0)
    version = int(m.Version())
    if m.SubgraphsLength() < 1:
        raise ModelError("the TFLite model has no subgraph")
    op_names = {v: k for k, v in vars(t.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(t.TensorType).items() if not k.startswith("_")}
    opt_names = {v: k for k, v in vars(t.BuiltinOptions).items() if not k.startswith("_")}

    codes: list[tuple[str, int, bool]] = []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = op_names.get(code, f"BUILTIN_{code}")
        custom = name == "CUSTOM"
        if custom:
            cc = oc.CustomCode()
            name = cc.decode("utf-8", "replace") if cc else "CUSTOM"
        codes.append((name, int(oc.Version()), custom))

    buffers = []
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        off, size = int(b.Offset()), int(b.Size())
        if off > 1:  # large models keep buffers after the flatbuffer
            if off + size > len(buf):
                raise InputFileError(f"buffer {i} (bytes {off}..{off + size}) lies past the end of the file (truncated?)")
            buffers.append(np.frombuffer(buf, np.uint8, size, off))
        else:
            buffers.append(_np(b.DataAsNumpy()).astype(np.uint8, copy=False))

    sg = m.Subgraphs(0)
    tensors: list[_TTensor] = []
    for i in range(sg.TensorsLength()):
        tt = sg.Tensors(i)
        raw_name = tt.Name()
        name = raw_name.decode("utf-8", "replace") if raw_name else ""
        shape = tuple(int(d) for d in _np(tt.ShapeAsNumpy()))
        type_name = type_names.get(tt.Type(), f"TYPE_{tt.Type()}")
        dtype = _DTYPES.get(type_name)
        quant, custom_quant = None, False
        qp = tt.Quantization()
        if qp is not None:
            custom_quant = int(qp.DetailsType()) != 0
            if qp.ScaleLength() > 0:
                scale = _np(qp.ScaleAsNumpy()).astype(np.float32)
                zp = _np(qp.ZeroPointAsNumpy()).astype(np.int64)
                if zp.size == 0:
                    zp = np.zeros(scale.shape, np.int64)
                if zp.size != scale.size:
                    raise ModelError(f"tensor '{name}': {scale.size} scales but {zp.size} zero points")
                if not np.all(np.isfinite(scale)) or np.any(scale < 0):
                    raise ModelError(f"tensor '{name}': invalid quantization scale(s) {scale[:4].tolist()}")
                if np.any(np.abs(zp) > (1 << 31)):
                    raise ModelError(f"tensor '{name}': zero point out of the int32 range")
                quant = QuantParams(scale, zp.astype(np.int32), int(qp.QuantizedDimension()))
        data = None
        bidx = int(tt.Buffer())
        if bidx >= len(buffers) and bidx != 0:
            raise InputFileError(f"tensor '{name}' refers to buffer {bidx}, but the model has {len(buffers)}")
        if 0 < bidx < len(buffers) and buffers[bidx].size:
            raw = buffers[bidx]
            if dtype is None:
                data = None  # packed INT4, strings...: reported by the op that reads it
            else:
                itemsize = np.dtype(dtype).itemsize
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                if raw.size != count * itemsize:
                    raise ModelError(f"tensor '{name}': buffer holds {raw.size} bytes, shape {shape} x {dtype} needs {count * itemsize}")
                data = np.frombuffer(raw.tobytes(), dtype).reshape(shape)
        tensors.append(_TTensor(i, name, shape, type_name, dtype, data, quant, bool(tt.IsVariable()), tt.Sparsity() is not None, custom_quant))

    n_t = len(tensors)

    def idx_list(arr) -> list[int]:
        out = [int(v) for v in _np(arr)]
        for v in out:
            if v < -1 or v >= n_t:
                raise InputFileError(f"tensor index {v} out of range (the subgraph has {n_t} tensors)")
        return out

    ops: list[_TOp] = []
    for i in range(sg.OperatorsLength()):
        o = sg.Operators(i)
        ci = int(o.OpcodeIndex())
        if ci >= len(codes):
            raise InputFileError(f"operator {i} uses opcode {ci}, but the model defines {len(codes)}")
        name, ver, custom = codes[ci]
        opt, opt_name = None, ""
        otype = int(o.BuiltinOptionsType())
        if otype:
            opt_name = opt_names.get(otype, "")
            table = o.BuiltinOptions()
            cls = getattr(t, opt_name, None) if opt_name else None
            if table is not None and cls is not None:
                opt = cls()
                opt.Init(table.Bytes, table.Pos)
        ops.append(_TOp(i, name, ver, idx_list(o.InputsAsNumpy()), idx_list(o.OutputsAsNumpy()), opt, opt_name, custom,
                        int(o.IntermediatesLength())))
    desc = m.Description()
    sg_name = sg.Name()
    return _TModel(
        version=version,
        description=desc.decode("utf-8", "replace") if desc else "",
        tensors=tensors,
        ops=ops,
        inputs=idx_list(sg.InputsAsNumpy()),
        outputs=idx_list(sg.OutputsAsNumpy()),
        n_subgraphs=int(m.SubgraphsLength()),
        subgraph_name=sg_name.decode("utf-8", "replace") if sg_name else "",
    )


# =============================================================================
# TFLite op -> edgec.q node
# =============================================================================

class _Unsupported(ValueError):
    """This operator cannot be imported; the message is the reason."""


@dataclass
class _Conv:
    op: str
    inputs: list[int]  # TFLite tensor indices, -1 for absent
    attrs: dict[str, Any] = field(default_factory=dict)


class _Ctx:
    def __init__(self, model: _TModel):
        self.m = model

    def t(self, idx: int) -> _TTensor:
        return self.m.tensors[idx]

    def inp(self, op: _TOp, k: int, required: bool = True) -> _TTensor | None:
        if k >= len(op.inputs) or op.inputs[k] < 0:
            if required:
                raise _Unsupported(f"input {k} is missing")
            return None
        return self.t(op.inputs[k])

    def out(self, op: _TOp, k: int = 0) -> _TTensor:
        if k >= len(op.outputs) or op.outputs[k] < 0:
            raise _Unsupported(f"output {k} is missing")
        return self.t(op.outputs[k])

    @staticmethod
    def options(op: _TOp, name: str):
        if op.options is None or op.options_name != name:
            raise _Unsupported(f"missing {name}")
        return op.options

    @staticmethod
    def const(t: _TTensor | None, what: str) -> np.ndarray:
        if t is None or t.data is None:
            raise _Unsupported(f"{what} must be a constant")
        return t.data


def _per_tensor(t: _TTensor, what: str) -> tuple[float, int]:
    if t.quant is None:
        raise _Unsupported(f"{what} '{t.name}' is not quantized")
    if t.quant.scale.size != 1:
        raise _Unsupported(f"{what} '{t.name}' is quantized per channel (per-tensor expected)")
    if not t.quant.scale[0] > 0:
        raise _Unsupported(f"{what} '{t.name}' has scale {t.quant.scale[0]} (positive expected)")
    return float(t.quant.scale[0]), int(t.quant.zero_point[0])


def _need_int8(*pairs: tuple[_TTensor, str]) -> None:
    for t, what in pairs:
        if t.type_name != "INT8":
            raise _Unsupported(f"{t.type_name.lower()} {what} (edgec.q takes full-integer int8 models)")


def _activation(code: int, out: _TTensor) -> tuple[str, int, int]:
    act = _ACTIVATIONS.get(int(code), f"UNKNOWN_{code}")
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise _Unsupported(f"fused activation {act} is not supported")
    scale, zp = _per_tensor(out, "output")
    lo, hi = q.activation_range(act, scale, zp, "int8")
    return act, lo, hi


def tflite_padding(padding: int, stride: int, dilation: int, in_size: int, k: int) -> tuple[int, int, int]:
    """(out, pad_before, pad_after) exactly as TFLite (ComputePaddingHeightWidth):
    total = max((out-1)*stride + (k-1)*dilation + 1 - in, 0), before = total // 2."""
    if stride <= 0 or dilation <= 0 or k <= 0:
        raise _Unsupported(f"stride {stride} / dilation {dilation} / window {k} must be positive")
    if padding not in (0, 1):
        raise _Unsupported(f"unknown padding {padding}")
    out, before, after = qmath.compute_padding("SAME" if padding == 0 else "VALID", in_size, k, stride, dilation)
    if out <= 0:
        raise _Unsupported(f"window {k} (dilation {dilation}) is larger than the input ({in_size})")
    return out, before, after


def _window_attrs(o, x: _TTensor, kh: int, kw: int, dilated: bool = True) -> dict:
    if len(x.shape) != 4:
        raise _Unsupported(f"input rank {len(x.shape)} (NHWC rank 4 expected)")
    sh, sw = int(o.StrideH()), int(o.StrideW())
    dh, dw = (int(o.DilationHFactor()), int(o.DilationWFactor())) if dilated else (1, 1)
    _, pt, pb = tflite_padding(int(o.Padding()), sh, dh, x.shape[1], kh)
    _, pl, pr = tflite_padding(int(o.Padding()), sw, dw, x.shape[2], kw)
    a = {"strides": (sh, sw), "pads": (pt, pl, pb, pr), "padding": "SAME" if int(o.Padding()) == 0 else "VALID"}
    if dilated:
        a["dilations"] = (dh, dw)
    return a


def _filter_checks(w: _TTensor, channels: int, axis: int) -> None:
    if w.data is None:
        raise _Unsupported(f"filter '{w.name}' is not a constant")
    if w.type_name != "INT8":
        raise _Unsupported(f"filter '{w.name}' is {w.type_name.lower()} (int8 expected)")
    if w.quant is None:
        raise _Unsupported(f"filter '{w.name}' is not quantized")
    if np.any(w.quant.zero_point != 0):
        raise _Unsupported(f"filter '{w.name}' has a non-zero zero point (TFLite requires symmetric int8 filters)")
    if w.quant.scale.size not in (1, channels):
        raise _Unsupported(f"filter '{w.name}' has {w.quant.scale.size} scales for {channels} channels")
    if w.quant.scale.size > 1 and w.quant.axis != axis:
        raise _Unsupported(f"filter '{w.name}' is quantized along axis {w.quant.axis} (expected {axis})")


def _bias_checks(b: _TTensor | None) -> None:
    if b is None:
        return
    if b.data is None:
        raise _Unsupported(f"bias '{b.name}' is not a constant")
    if b.type_name != "INT32":
        raise _Unsupported(f"bias '{b.name}' is {b.type_name.lower()} (int32 expected)")


def _conv2d(ctx: _Ctx, op: _TOp) -> _Conv:
    x, w, b, y = ctx.inp(op, 0), ctx.inp(op, 1), ctx.inp(op, 2, False), ctx.out(op)
    _need_int8((x, "input"), (y, "output"))
    o = ctx.options(op, "Conv2DOptions")
    if len(w.shape) != 4:
        raise _Unsupported(f"filter rank {len(w.shape)}")
    _filter_checks(w, w.shape[0], 0)
    _bias_checks(b)
    sx, zx = _per_tensor(x, "input")
    sy, zy = _per_tensor(y, "output")
    act, lo, hi = _activation(o.FusedActivationFunction(), y)
    mult, shift = q.conv_requant(sx, w.quant.scale, sy, w.shape[0])
    a = _window_attrs(o, x, w.shape[1], w.shape[2])
    a.update(input_zp=zx, output_zp=zy, out_mult=mult, out_shift=shift, act_min=lo, act_max=hi, fused_activation=act)
    return _Conv("Conv2D", [op.inputs[0], op.inputs[1], b.index if b else -1], a)


def _depthwise(ctx: _Ctx, op: _TOp) -> _Conv:
    x, w, b, y = ctx.inp(op, 0), ctx.inp(op, 1), ctx.inp(op, 2, False), ctx.out(op)
    _need_int8((x, "input"), (y, "output"))
    o = ctx.options(op, "DepthwiseConv2DOptions")
    if len(w.shape) != 4 or w.shape[0] != 1:
        raise _Unsupported(f"depthwise filter shape {w.shape} (1xHxWxC expected)")
    _filter_checks(w, w.shape[3], 3)
    _bias_checks(b)
    if len(x.shape) != 4:
        raise _Unsupported(f"input rank {len(x.shape)}")
    sx, zx = _per_tensor(x, "input")
    sy, zy = _per_tensor(y, "output")
    act, lo, hi = _activation(o.FusedActivationFunction(), y)
    dm = int(o.DepthMultiplier())
    if dm <= 0 or dm * x.shape[3] != w.shape[3]:
        # TFLite Micro iterates input channels x depth_multiplier from the options:
        # a value that disagrees with the shapes would silently compute garbage there
        raise _Unsupported(f"depth_multiplier {dm} disagrees with {x.shape[3]} input / {w.shape[3]} filter channels")
    mult, shift = q.conv_requant(sx, w.quant.scale, sy, w.shape[3])
    a = _window_attrs(o, x, w.shape[1], w.shape[2])
    a.update(depth_multiplier=dm, input_zp=zx, output_zp=zy, out_mult=mult, out_shift=shift, act_min=lo, act_max=hi,
             fused_activation=act)
    return _Conv("DepthwiseConv2D", [op.inputs[0], op.inputs[1], b.index if b else -1], a)


def _fully_connected(ctx: _Ctx, op: _TOp) -> _Conv:
    x, w, b, y = ctx.inp(op, 0), ctx.inp(op, 1), ctx.inp(op, 2, False), ctx.out(op)
    _need_int8((x, "input"), (y, "output"))
    o = ctx.options(op, "FullyConnectedOptions")
    if int(o.WeightsFormat()) != 0:
        raise _Unsupported("shuffled weights format (SHUFFLED4x16INT8)")
    if len(w.shape) != 2:
        raise _Unsupported(f"weights rank {len(w.shape)} (2 expected)")
    if w.data is None:
        raise _Unsupported(f"weights '{w.name}' are not a constant")
    if w.type_name != "INT8" or w.quant is None:
        raise _Unsupported(f"weights '{w.name}' are {w.type_name.lower()} (quantized int8 expected)")
    _bias_checks(b)
    sx, zx = _per_tensor(x, "input")
    sy, zy = _per_tensor(y, "output")
    act, lo, hi = _activation(o.FusedActivationFunction(), y)
    units = w.shape[0]
    if w.quant.scale.size > 1:
        if w.quant.scale.size != units or w.quant.axis != 0:
            raise _Unsupported(f"weights '{w.name}' have {w.quant.scale.size} scales along axis {w.quant.axis}")
        if np.any(w.quant.zero_point != 0):
            raise _Unsupported("per-channel weights with non-zero zero points")
        fzp = 0
    else:
        fzp = int(w.quant.zero_point[0])
    mult, shift = q.fc_requant(sx, w.quant.scale, sy)
    a = dict(input_zp=zx, filter_zp=fzp, output_zp=zy, out_mult=tuple(mult), out_shift=tuple(shift), act_min=lo, act_max=hi,
             keep_num_dims=bool(o.KeepNumDims()), fused_activation=act)
    return _Conv("FullyConnected", [op.inputs[0], op.inputs[1], b.index if b else -1], a)


def _pool(kind: str) -> Callable[[_Ctx, _TOp], _Conv]:
    def conv(ctx: _Ctx, op: _TOp) -> _Conv:
        x, y = ctx.inp(op, 0), ctx.out(op)
        _need_int8((x, "input"), (y, "output"))
        o = ctx.options(op, "Pool2DOptions")
        sx, zx = _per_tensor(x, "input")
        sy, zy = _per_tensor(y, "output")
        if abs(sx - sy) > 1e-6 or zx != zy:
            raise _Unsupported("input and output quantization differ (TFLite requires them equal for int8 pooling)")
        act, lo, hi = _activation(o.FusedActivationFunction(), y)
        kh, kw = int(o.FilterHeight()), int(o.FilterWidth())
        a = _window_attrs(o, x, kh, kw, dilated=False)
        a.update(kernel=(kh, kw), act_min=lo, act_max=hi, fused_activation=act)
        return _Conv(kind, [op.inputs[0]], a)

    return conv


def _softmax(ctx: _Ctx, op: _TOp) -> _Conv:
    x, y = ctx.inp(op, 0), ctx.out(op)
    _need_int8((x, "input"), (y, "output"))
    o = ctx.options(op, "SoftmaxOptions")
    sx, _ = _per_tensor(x, "input")
    sy, zy = _per_tensor(y, "output")
    if zy != -128 or np.float32(sy) != np.float32(1.0 / 256):
        raise _Unsupported(f"int8 softmax output must have scale 1/256 and zero point -128 (has {sy}, {zy})")
    beta = float(np.float32(o.Beta()))
    try:
        p = q.softmax_attrs(beta, sx)
    except ValueError as e:
        raise _Unsupported(str(e)) from None
    return _Conv("Softmax", [op.inputs[0]], dict(beta=beta, **p))


def _reshape(ctx: _Ctx, op: _TOp) -> _Conv:
    x, y = ctx.inp(op, 0), ctx.out(op)
    if x.dtype is None:
        raise _Unsupported(f"tensor type {x.type_name}")
    # Like TFLite Micro, the output's declared static shape is authoritative; the new
    # shape (input 1, else ReshapeOptions) must agree with it once -1 is resolved.
    s = ctx.inp(op, 1, False)
    new = None
    if s is not None and s.data is not None:
        new = [int(v) for v in s.data.reshape(-1)]
    elif op.options is not None and op.options_name == "ReshapeOptions" and op.options.NewShapeLength() > 0:
        new = [int(v) for v in op.options.NewShapeAsNumpy()]
    if new is not None and new.count(-1) <= 1 and all(d >= -1 for d in new):
        known = int(np.prod([d for d in new if d != -1], dtype=np.int64))
        if -1 in new and known > 0:
            new[new.index(-1)] = int(np.prod(x.shape, dtype=np.int64)) // known
        if tuple(new) != tuple(y.shape):
            raise _Unsupported(f"new shape {tuple(new)} disagrees with the declared output shape {tuple(y.shape)}")
    return _Conv("Reshape", [op.inputs[0]], dict(shape=tuple(y.shape)))


def _add(ctx: _Ctx, op: _TOp) -> _Conv:
    a_, b_, y = ctx.inp(op, 0), ctx.inp(op, 1), ctx.out(op)
    _need_int8((a_, "input 1"), (b_, "input 2"), (y, "output"))
    o = ctx.options(op, "AddOptions")
    s1, z1 = _per_tensor(a_, "input 1")
    s2, z2 = _per_tensor(b_, "input 2")
    so, zo = _per_tensor(y, "output")
    act, _, _ = _activation(o.FusedActivationFunction(), y)
    try:
        p = q.add_attrs(s1, z1, s2, z2, so, zo, act)
    except ValueError as e:
        raise _Unsupported(str(e)) from None
    return _Conv("Add", [op.inputs[0], op.inputs[1]], dict(fused_activation=act, **p))


def _mul(ctx: _Ctx, op: _TOp) -> _Conv:
    a_, b_, y = ctx.inp(op, 0), ctx.inp(op, 1), ctx.out(op)
    _need_int8((a_, "input 1"), (b_, "input 2"), (y, "output"))
    o = ctx.options(op, "MulOptions")
    s1, z1 = _per_tensor(a_, "input 1")
    s2, z2 = _per_tensor(b_, "input 2")
    so, zo = _per_tensor(y, "output")
    act, _, _ = _activation(o.FusedActivationFunction(), y)
    return _Conv("Mul", [op.inputs[0], op.inputs[1]], dict(fused_activation=act, **q.mul_attrs(s1, z1, s2, z2, so, zo, act)))


def _concatenation(ctx: _Ctx, op: _TOp) -> _Conv:
    y = ctx.out(op)
    xs = [ctx.inp(op, k) for k in range(len(op.inputs))]
    _need_int8((y, "output"), *[(x, f"input {k}") for k, x in enumerate(xs)])
    o = ctx.options(op, "ConcatenationOptions")
    if _ACTIVATIONS.get(int(o.FusedActivationFunction())) != "NONE":
        raise _Unsupported("fused activation on CONCATENATION (TFLite Micro refuses it)")
    sy, zy = _per_tensor(y, "output")
    for x in xs:
        sx, zx = _per_tensor(x, "input")
        if np.float32(sx) != np.float32(sy) or zx != zy:
            raise _Unsupported(f"input '{x.name}' needs rescaling (int8 CONCATENATION requires equal scale/zero point)")
    rank = len(y.shape)
    axis = int(o.Axis())
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise _Unsupported(f"axis {o.Axis()} out of range for rank {rank}")
    return _Conv("Concatenation", list(op.inputs), dict(axis=axis))


def _pad(ctx: _Ctx, op: _TOp) -> _Conv:
    x, p, y = ctx.inp(op, 0), ctx.inp(op, 1), ctx.out(op)
    _need_int8((x, "input"), (y, "output"))
    pads = ctx.const(p, "paddings").astype(np.int64).reshape(-1, 2)
    if pads.shape[0] != len(x.shape) or np.any(pads < 0):
        raise _Unsupported(f"paddings {pads.tolist()} for rank {len(x.shape)}")
    sx, zx = _per_tensor(x, "input")
    sy, zy = _per_tensor(y, "output")
    if np.float32(sx) != np.float32(sy) or zx != zy:
        raise _Unsupported("input and output quantization differ")
    cv = ctx.inp(op, 2, False)
    value = zy if cv is None else int(ctx.const(cv, "constant value").reshape(-1)[0])
    return _Conv("Pad", [op.inputs[0]], dict(pads=tuple((int(b), int(e)) for b, e in pads), pad_value=value))


def _strided_slice(ctx: _Ctx, op: _TOp) -> _Conv:
    x, y = ctx.inp(op, 0), ctx.out(op)
    if x.dtype is None or x.type_name not in ("INT8", "INT32", "INT16", "UINT8"):
        raise _Unsupported(f"tensor type {x.type_name}")
    begin = ctx.const(ctx.inp(op, 1), "begin").astype(np.int64).reshape(-1)
    end = ctx.const(ctx.inp(op, 2), "end").astype(np.int64).reshape(-1)
    strides = ctx.const(ctx.inp(op, 3), "strides").astype(np.int64).reshape(-1)
    o = ctx.options(op, "StridedSliceOptions")
    if int(o.EllipsisMask()) or int(o.NewAxisMask()):
        raise _Unsupported("ellipsis_mask / new_axis_mask (TFLite Micro refuses them)")
    if bool(o.Offset()):
        raise _Unsupported("offset=true")
    rank = len(x.shape)
    if not len(begin) == len(end) == len(strides) == rank:
        raise _Unsupported(f"begin/end/strides lengths {len(begin)}/{len(end)}/{len(strides)} for rank {rank}")
    if np.any(strides == 0):
        raise _Unsupported("zero stride")
    bm, em, sm = int(o.BeginMask()), int(o.EndMask()), int(o.ShrinkAxisMask())
    slices = []
    big = 1 << 31
    for ax in range(rank):
        size, st = x.shape[ax], int(strides[ax])
        lo_c, hi_c = (0, size) if st > 0 else (-1, size - 1)
        start = int(begin[ax])
        if bm & (1 << ax):
            start = -big if st > 0 else big - 1
        if start < 0:
            start += size
        start = min(max(start, lo_c), hi_c)
        if sm & (1 << ax):
            stop = start + 1
        else:
            stop = int(end[ax])
            if em & (1 << ax):
                stop = big - 1 if st > 0 else -big
            if stop < 0:
                stop += size
            stop = min(max(stop, lo_c), hi_c)
        slices.append((start, stop, st))
    return _Conv("StridedSlice", [op.inputs[0]], dict(slices=tuple(slices), shape=tuple(y.shape)))


def _quantize(ctx: _Ctx, op: _TOp) -> _Conv:
    x, y = ctx.inp(op, 0), ctx.out(op)
    so, zo = _per_tensor(y, "output")
    if y.type_name != "INT8":
        raise _Unsupported(f"QUANTIZE to {y.type_name.lower()} (int8 only)")
    if x.type_name == "FLOAT32":
        return _Conv("Quantize", [op.inputs[0]], dict(mode="float", scale=float(np.float32(so)), output_zp=zo, out_dtype="int8"))
    if x.type_name == "INT8":
        si, zi = _per_tensor(x, "input")
        m, s = q.quantize_multiplier(float(np.float32(si)) / float(np.float32(so)))
        return _Conv("Quantize", [op.inputs[0]], dict(mode="requant", input_zp=zi, output_zp=zo, mult=m, shift=s, out_dtype="int8"))
    raise _Unsupported(f"QUANTIZE from {x.type_name.lower()}")


def _dequantize(ctx: _Ctx, op: _TOp) -> _Conv:
    x, y = ctx.inp(op, 0), ctx.out(op)
    if x.type_name != "INT8" or y.type_name != "FLOAT32":
        raise _Unsupported(f"DEQUANTIZE {x.type_name.lower()} -> {y.type_name.lower()} (int8 -> float32 only)")
    s, z = _per_tensor(x, "input")
    return _Conv("Dequantize", [op.inputs[0]], dict(scale=float(np.float32(s)), input_zp=z, out_dtype="float32"))


def _sigmoid_like(kind: str, out_scale: float, out_zp: int) -> Callable[[_Ctx, _TOp], _Conv]:
    def conv(ctx: _Ctx, op: _TOp) -> _Conv:
        x, y = ctx.inp(op, 0), ctx.out(op)
        _need_int8((x, "input"), (y, "output"))
        sx, zx = _per_tensor(x, "input")
        sy, zy = _per_tensor(y, "output")
        if zy != out_zp or np.float32(sy) != np.float32(out_scale):
            raise _Unsupported(f"int8 {kind.upper()} output must have scale {out_scale} and zero point {out_zp} (has {sy}, {zy})")
        return _Conv(kind, [op.inputs[0]], q.sigmoid_tanh_attrs(sx, zx))

    return conv


_STATE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}
_CONVERTERS: dict[str, Callable[[_Ctx, _TOp], _Conv]] = {
    "CONV_2D": _conv2d,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool("AveragePool2D"),
    "MAX_POOL_2D": _pool("MaxPool2D"),
    "SOFTMAX": _softmax,
    "RESHAPE": _reshape,
    "ADD": _add,
    "MUL": _mul,
    "CONCATENATION": _concatenation,
    "PAD": _pad,
    "PADV2": _pad,
    "STRIDED_SLICE": _strided_slice,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
    "LOGISTIC": _sigmoid_like("Logistic", 1.0 / 256, -128),
    "TANH": _sigmoid_like("Tanh", 1.0 / 128, 0),
}


def supported_tflite_ops() -> list[str]:
    return sorted(_CONVERTERS)


# =============================================================================
# Graph assembly
# =============================================================================

def load_tflite(path: str | Path) -> Graph:
    """Load an int8 .tflite model (subgraph 0) into an edgec Graph of edgec.q nodes."""
    path = Path(path)
    model = _parse(_read_bytes(path), path)
    return _to_graph(model, path.stem)


def _unique_names(tensors: list[_TTensor]) -> list[str]:
    names: list[str] = []
    used: set[str] = set()
    for t in tensors:
        base = t.name or f"tensor_{t.index}"
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names.append(name)
    return names


def _to_graph(model: _TModel, stem: str) -> Graph:
    version = model.version
    if version != SCHEMA_VERSION:
        raise ModelError(f"TFLite schema version {version} is not supported (expected {SCHEMA_VERSION})")
    ctx = _Ctx(model)
    names = _unique_names(model.tensors)

    def make_tensor(t: _TTensor, shape=None, dtype=None) -> Tensor:
        return Tensor(names[t.index], tuple(t.shape if shape is None else shape), dtype or t.dtype or "uint8", t.data, t.quant)

    tensors: dict[str, Tensor] = {}
    for i in model.inputs:
        if i < 0:
            continue
        t = model.tensors[i]
        if t.data is None:
            if any(d <= 0 for d in t.shape):
                raise ModelError(f"input '{t.name}' has a dynamic shape {t.shape}")
            tensors[names[i]] = make_tensor(t)
    for t in model.tensors:  # constants (weights, biases, shape operands)
        if t.data is not None:
            tensors[names[t.index]] = make_tensor(t)

    nodes: list[Node] = []
    unsupported: list[tuple[str, str, str, int, str]] = []
    produced: set[int] = {i for i in model.inputs if i >= 0} | {t.index for t in model.tensors if t.data is not None}
    for op in model.ops:
        nname = f"{op.op.lower()}_{op.index}" if not op.custom else f"custom_{op.index}"

        def refuse(why: str) -> None:
            unsupported.append((nname, op.op, "tflite", version, why))
            produced.update(o for o in op.outputs if o >= 0)

        variables = [model.tensors[i].name for i in op.inputs + op.outputs if i >= 0 and model.tensors[i].is_variable]
        if op.custom:
            refuse("custom op")
            continue
        if op.op in _STATE_OPS:
            refuse("resource variables (streaming state) are not supported: edgec has no persistent state tensors yet")
            continue
        conv = _CONVERTERS.get(op.op)
        if conv is None:
            refuse("no edgec.q op for this TFLite op" + (f" (it keeps state in variable tensor(s) {variables})" if variables else ""))
            continue
        if variables:
            refuse(f"reads/writes variable tensor(s) {variables} (persistent state is not supported)")
            continue
        missing = [model.tensors[i].name for i in op.inputs if i >= 0 and i not in produced]
        if missing:
            raise ModelError(f"operator {op.index} ({op.op}) reads tensor(s) {missing} before they are produced")
        sparse = [model.tensors[i].name for i in op.inputs if i >= 0 and (model.tensors[i].sparse or model.tensors[i].custom_quant)]
        if sparse:
            refuse(f"sparse or custom-quantized tensor(s) {sparse}")
            continue
        try:
            c = conv(ctx, op)
        except _Unsupported as e:
            refuse(str(e))
            continue
        except (ValueError, ArithmeticError, IndexError) as e:  # odd parameters a malformed file can carry
            refuse(f"cannot import its parameters ({type(e).__name__}: {e})")
            continue
        opdef = lookup(c.op, DOMAIN)
        if opdef is None:  # pragma: no cover - converter and op table out of sync
            refuse(f"edgec.q op {c.op} is not registered")
            continue
        node_inputs = tuple(names[i] if i >= 0 else "" for i in c.inputs)
        outs = [i for i in op.outputs]
        attrs = dict(c.attrs)
        attrs["tflite_op"] = op.op
        attrs["tflite_version"] = op.version
        node = Node(nname, c.op, node_inputs, tuple(names[o] for o in outs), attrs, DOMAIN)
        ins = [tensors.get(n) if n else None for n in node_inputs]
        if any(n and tensors.get(n) is None for n in node_inputs):
            # an input comes from a refused op: its shape is unknown to us, keep scanning
            produced.update(o for o in outs if o >= 0)
            continue
        try:
            why = opdef.check(node, ins) if opdef.check else None
            specs = None if why else opdef.shape(node, ins)
        except Exception as e:  # noqa: BLE001 - a shape function choking on odd attributes
            why = f"cannot infer its output shape ({type(e).__name__}: {e})"
        if why:
            refuse(why)
            continue
        bad = None
        for o, (shape, dtype) in zip(outs, specs):
            t = model.tensors[o]
            if tuple(shape) != tuple(t.shape) or (t.dtype and dtype != t.dtype):
                bad = f"output '{t.name}': edgec computes {tuple(shape)} {dtype}, the model declares {tuple(t.shape)} {t.dtype}"
                break
        if bad:
            refuse(bad)
            continue
        if all(t is None or t.is_const for t in ins) and any(t is not None for t in ins):
            # constant subgraph (rare: the TFLite converter folds these): fold into flash data
            vals = opdef.reference(node, [t.data if t is not None else None for t in ins])
            for o, v in zip(outs, vals):
                t = model.tensors[o]
                tensors[names[o]] = Tensor(names[o], tuple(v.shape), v.dtype.name, np.asarray(v), t.quant)
            produced.update(outs)
            continue
        for o, (shape, dtype) in zip(outs, specs):
            tensors[names[o]] = make_tensor(model.tensors[o], shape, dtype)
        produced.update(outs)
        nodes.append(node)

    if unsupported:
        raise UnsupportedOpsError(unsupported)
    inputs = [names[i] for i in model.inputs if i >= 0 and model.tensors[i].data is None]
    outputs = [names[i] for i in model.outputs if i >= 0]
    for o in outputs:
        if o not in tensors:
            raise ModelError(f"graph output '{o}' is never produced")
    graph = Graph(name=_c_ident(stem), tensors=tensors, nodes=nodes, inputs=inputs, outputs=outputs, opset=version)
    return graph.with_nodes(graph.live_nodes())


def _c_ident(name: str) -> str:
    s = re.sub(r"\W", "_", name).strip("_").lower() or "model"
    return s if not s[0].isdigit() else "m_" + s


__all__ = ["load_tflite", "supported_tflite_ops", "tflite_padding", "SCHEMA_VERSION"]
