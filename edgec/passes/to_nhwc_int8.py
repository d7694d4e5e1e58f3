"""Annotated float graph (ONNX ops, NCHW, quantization parameters on tensors)
-> integer graph of edgec.q ops (NHWC, TFLite semantics).

Shared by the PTQ pass (`quantize_int8.py`, which computes the parameters by
calibration) and the quantized-ONNX importer (`frontend/onnx_quantized.py`,
which reads them from QuantizeLinear/DequantizeLinear and QLinear* nodes).

The input graph ("annotated graph") is an edgec Graph whose nodes are plain
ONNX ops in NCHW with these conventions:

* every runtime tensor the integer graph materialises carries per-tensor
  `QuantParams` in the **int8 domain** (uint8 parameters already shifted by
  -128). A tensor without parameters is allowed only where it disappears: the
  output of a producer fused with the Relu/Clip that reads it, or the output of
  a shape op (it inherits its input's parameters);
* weights and biases are constants: integer data with `QuantParams` (used as
  they are: an imported model's own int8 weights and int32 biases), or float
  data (quantized here: weights per output channel, symmetric, [-127, 127];
  biases to int32 at scale input_scale * weight_scale);
* graph inputs/outputs carry the parameters of the int8 C API
  (`INPUTk_SCALE` / `INPUTk_ZERO_POINT` in model.h);
* an `Identity` node whose output parameters differ from its input's is a
  requantization.

Layout: rank-4 activations are stored NHWC (conv filters OHWI, depthwise
1HW(C*M)), so a rank-4 graph input or output of the C API is NHWC too (see
docs/quantization.md). A Flatten/Reshape of an NHWC tensor to (N, C*H*W) is a
free reshape of the NHWC bytes; the permutation it implies is folded into the
columns of the FullyConnected weights that read it, as the TFLite converter
does. Every requantization-parameter computation goes through the helpers of
`edgec/ops/quantized.py` (TFLite Micro's Prepare maths from `edgec/qmath.py`),
so the generated code is integer-only and bit-exact with the NumPy references.

Ops (each into edgec.q): Conv (group 1, depthwise, grouped), Gemm / MatMul
with constant weights, BatchNormalization (a 1x1 depthwise conv), Add, Mul,
Relu / Clip (fused into the producer, or a requantizing Add of zero),
MaxPool, AveragePool, GlobalAveragePool, ReduceMean over H, W, Softmax,
Sigmoid, Tanh, Concat, Pad, Reshape / Flatten / Squeeze / Unsqueeze /
Identity / Dropout. Anything else is listed in one UnsupportedOpsError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgec import qmath
from edgec.errors import ModelError, UnsupportedOpsError
from edgec.ir import Graph, Node, QuantParams, Tensor, interpret
from edgec.ops import quantized as q
from edgec.ops.common import window
from edgec.ops.registry import lookup
from edgec.passes.pipeline import GraphPass

DOMAIN = q.DOMAIN
NHWC = "nhwc"
PLAIN = "plain"
NCHW_TO_NHWC = (0, 2, 3, 1)

# fixed output parameters of the int8 kernels (TFLite Micro enforces them)
SOFTMAX_OUT = (1.0 / 256, -128)
LOGISTIC_OUT = (1.0 / 256, -128)
TANH_OUT = (1.0 / 128, 0)

ACTIVATIONS = {"Relu", "Clip"}
FUSIBLE_PRODUCERS = {"Conv", "Gemm", "MatMul", "Add", "Mul", "BatchNormalization", "MaxPool", "AveragePool",
                     "GlobalAveragePool", "ReduceMean"}
ALIAS_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
SUPPORTED = FUSIBLE_PRODUCERS | ACTIVATIONS | ALIAS_OPS | {"Softmax", "Sigmoid", "Tanh", "Concat", "Pad"}


class Unsupported(Exception):
    """A node the integer graph cannot represent (collected, reported together)."""


def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([int(zp)], np.int32))


def per_tensor(t: Tensor) -> tuple[float, int] | None:
    if t.quant is None:
        return None
    if t.quant.scale.size != 1:
        raise Unsupported(f"tensor '{t.name}' has per-channel activation quantization (axis {t.quant.axis}); "
                          "edgec's int8 kernels take per-tensor activations")
    return float(np.float32(t.quant.scale.reshape(-1)[0])), int(t.quant.zero_point.reshape(-1)[0])


def api_layout(shape: Sequence[int]) -> str:
    """Layout of a graph input/output in the int8 C API: rank 4 is NHWC."""
    return NHWC if len(shape) == 4 else PLAIN


def to_api(x: np.ndarray) -> np.ndarray:
    """An NCHW array (as the ONNX model takes it) in the int8 C API's layout."""
    return np.ascontiguousarray(np.transpose(x, NCHW_TO_NHWC)) if x.ndim == 4 else x


def from_api(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(y, (0, 3, 1, 2))) if y.ndim == 4 else y


# ---- parameter helpers ---------------------------------------------------------------


def choose_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 parameters covering [lo, hi] (widened to include 0), with
    an exactly representable zero (TFLite's nudged zero point)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ModelError(f"non-finite activation range [{lo}, {hi}]")
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(qmath.tflite_round(-128 - lo / scale), -128, 127))
    return scale, zp


def quantize_per_channel(w: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per-channel weights in [-127, 127]: (int8 data, float32 scales)."""
    w = np.asarray(w, np.float64)
    red = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=red) if red else np.abs(w)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shp = [1] * w.ndim
    shp[axis] = -1
    qv = np.clip(np.round(w / scales.astype(np.float64).reshape(shp)), -127, 127).astype(np.int8)
    return qv, scales


def dequantize_const(t: Tensor) -> np.ndarray:
    """Float value of a constant (integer data with QuantParams, or float data)."""
    d = np.asarray(t.data)
    if t.quant is None:
        if not np.issubdtype(d.dtype, np.floating):
            return d.astype(np.float64)
        return d.astype(np.float64)
    s, z = t.quant.scale.astype(np.float64), t.quant.zero_point.astype(np.float64)
    if s.size > 1:
        shp = [1] * d.ndim
        shp[t.quant.axis] = -1
        s, z = s.reshape(shp), z.reshape(shp)
    return (d.astype(np.float64) - z) * s


def _q_bound(f: float, scale: float, zp: int) -> int:
    return zp + qmath.tflite_round(float(np.float32(f) / np.float32(scale)))


def clamp_range(bounds: Sequence[tuple[float, float]], scale: float, zp: int) -> tuple[int, int]:
    """Integer clamp of fused activation bounds (float, TFLite's rounding) intersected."""
    lo, hi = -128, 127
    for a, b in bounds:
        if a is not None and a > -np.inf:
            lo = max(lo, _q_bound(a, scale, zp))
        if b is not None and b < np.inf:
            hi = min(hi, _q_bound(b, scale, zp))
    if lo > hi:
        lo = hi = int(np.clip(lo, -128, 127))
    return int(np.clip(lo, -128, 127)), int(np.clip(hi, -128, 127))


def activation_bounds(g: Graph, n: Node) -> tuple[float, float]:
    if n.op == "Relu":
        return 0.0, np.inf
    lo = hi = None
    if len(n.inputs) > 1 and n.inputs[1]:
        lo = float(dequantize_const(_const(g, n.inputs[1], n, "min")).reshape(-1)[0])
    if len(n.inputs) > 2 and n.inputs[2]:
        hi = float(dequantize_const(_const(g, n.inputs[2], n, "max")).reshape(-1)[0])
    lo = float(n.attrs.get("min", -np.inf)) if lo is None else lo
    hi = float(n.attrs.get("max", np.inf)) if hi is None else hi
    return lo, hi


def activation_name(bounds: Sequence[tuple[float, float]]) -> str:
    if not bounds:
        return "NONE"
    lo = max(b[0] for b in bounds)
    hi = min(b[1] for b in bounds)
    if lo == 0.0 and hi == np.inf:
        return "RELU"
    if lo == 0.0 and hi == 6.0:
        return "RELU6"
    return f"CLIP({lo:g},{hi:g})"


def _const(g: Graph, name: str, n: Node, what: str) -> Tensor:
    t = g.tensors.get(name)
    if t is None or not t.is_const:
        raise Unsupported(f"{what} '{name}' must be a constant")
    return t


# ---- the converter ---------------------------------------------------------------------


@dataclass
class _Val:
    name: str  # tensor in the integer graph
    layout: Any  # NHWC | PLAIN | np.ndarray (flattened-NCHW column permutation)


class _Converter:
    def __init__(self, g: Graph):
        self.g = g
        self.prod = g.producers()
        self.cons = g.consumers()
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.env: dict[str, _Val] = {}
        self.unsupported: list[tuple[str, str, str, int, str]] = []
        self.fused: dict[int, list[Node]] = {}  # producer id -> activation chain
        self.skip: set[int] = set()
        self._plan_fusion()

    # -- helpers -----------------------------------------------------------------------
    def fresh(self, base: str, logical: bool = False) -> str:
        """A new integer-graph tensor name; logical tensors keep their ONNX name when free."""
        used = set(self.tensors) if logical else set(self.tensors) | set(self.g.tensors)
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        return name

    def add_const(self, base: str, data: np.ndarray, quant: QuantParams | None = None) -> str:
        name = self.fresh(base)
        data = np.ascontiguousarray(data)
        self.tensors[name] = Tensor(name, tuple(data.shape), data.dtype.name, data, quant)
        return name

    def quant_of(self, name: str) -> tuple[float, int]:
        t = self.g.tensors[name]
        p = per_tensor(t)
        seen = name
        while p is None and seen not in self.g.outputs:
            # quantized only after a reshape (torch exports Q after Flatten): the same values
            cs = self.cons.get(seen, [])
            if len(cs) != 1 or cs[0].op not in ALIAS_OPS or cs[0].inputs[0] != seen:
                break
            seen = cs[0].outputs[0]
            p = per_tensor(self.g.tensors[seen])
        if p is None:
            producer = self.prod.get(name)
            where = f" (output of {producer.op} node '{producer.name}')" if producer else ""
            raise Unsupported(f"tensor '{name}'{where} has no quantization parameters: the model is only partly "
                              "quantized (no QuantizeLinear after it; for onnxruntime models run "
                              "onnxruntime.quantization.quant_pre_process before quantize_static)")
        return p

    def val(self, name: str) -> _Val:
        if name not in self.env:
            raise Unsupported(f"input '{name}' is not an int8 runtime tensor")
        return self.env[name]

    def emit(self, n: Node, op: str, inputs: Sequence[str], out_logical: str, out_shape: Sequence[int], quant: tuple[float, int],
             layout: Any, attrs: dict, out_name: str | None = None, dtype: str = "int8") -> str:
        name = out_name or self.fresh(out_logical, logical=True)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in out_shape), dtype, None, qp(*quant))
        node = Node(self.fresh_node(n.name), op, tuple(inputs), (name,), dict(attrs, onnx_op=n.op), DOMAIN)
        self.nodes.append(node)
        if out_logical:
            self.env[out_logical] = _Val(name, layout)
        return name

    def fresh_node(self, base: str) -> str:
        used = {m.name for m in self.nodes}
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        return name

    def physical_shape(self, logical: Sequence[int], layout: Any) -> tuple[int, ...]:
        if is_nhwc(layout):
            return tuple(logical[p] for p in NCHW_TO_NHWC)
        return tuple(logical)

    # -- fusion plan ---------------------------------------------------------------------
    def _plan_fusion(self) -> None:
        """Relu/Clip chains after a producer with a requantizing epilogue become its clamp."""
        owner: dict[str, Node] = {}
        for n in self.g.nodes:
            if n.op in FUSIBLE_PRODUCERS and n.outputs:
                owner[n.outputs[0]] = n
            elif n.op in ACTIVATIONS:
                src = n.inputs[0]
                root = owner.get(src)
                if root is None or len(self.cons.get(src, [])) != 1 or src in self.g.outputs:
                    continue
                if any(i and not self.g.is_const(i) for i in n.inputs[1:]):
                    continue
                self.fused.setdefault(id(root), []).append(n)
                self.skip.add(id(n))
                owner[n.outputs[0]] = root

    def out_info(self, n: Node) -> tuple[str, list[tuple[float, float]], list[tuple[float, int]]]:
        """(final logical output, activation bounds, intermediate quant ranges) of n with its fused chain."""
        chain = self.fused.get(id(n), [])
        out = n.outputs[0]
        bounds: list[tuple[float, float]] = []
        for a in chain:
            t = self.g.tensors.get(out)
            if t is not None and t.quant is not None:  # a quantized intermediate: its saturation too
                s, z = per_tensor(t)
                bounds.append((s * (-128 - z), s * (127 - z)))
            bounds.append(activation_bounds(self.g, a))
            out = a.outputs[0]
        return out, bounds, []

    # -- conversion -------------------------------------------------------------------------
    def run(self) -> Graph:
        g = self.g
        for name in g.inputs:
            t = g.tensors[name]
            try:
                s, z = self.quant_of(name)
            except Unsupported as e:
                raise ModelError(str(e)) from None
            layout = api_layout(t.shape)
            shape = self.physical_shape(t.shape, layout)
            self.tensors[name] = Tensor(name, shape, "int8", None, qp(s, z))
            self.env[name] = _Val(name, layout)
        for n in g.nodes:
            if id(n) in self.skip:
                continue
            if any(i and i not in self.env and not g.is_const(i) for i in n.inputs):
                # downstream of a refused node: keep scanning for more refusals
                if n.op not in SUPPORTED:
                    self.refuse(n, "no int8 (edgec.q) equivalent")
                continue
            handler = getattr(self, f"op_{n.op}", None)
            try:
                if n.domain not in ("", "ai.onnx") or handler is None:
                    raise Unsupported("no int8 (edgec.q) equivalent")
                handler(n)
            except Unsupported as e:
                self.refuse(n, str(e))
            except (ValueError, ArithmeticError) as e:
                self.refuse(n, f"cannot compute its int8 parameters ({type(e).__name__}: {e})")
        if self.unsupported:
            raise UnsupportedOpsError(self.unsupported)
        outputs = []
        for o in g.outputs:
            v = self.env.get(o)
            if v is None:
                raise ModelError(f"graph output '{o}' is not an int8 tensor")
            if is_perm(v.layout):
                raise ModelError(f"graph output '{o}' is a flattened NCHW tensor; the int8 C API cannot return it "
                                 "in ONNX order without a transpose")
            if v.name != o and o not in self.tensors:
                # give the API the ONNX output name
                self._rename(v.name, o)
                v = self.env[o]
            outputs.append(v.name)
        out = Graph(name=g.name, tensors=self.tensors, nodes=self.nodes, inputs=list(g.inputs), outputs=outputs,
                    opset=g.opset)
        out = out.with_nodes(out.live_nodes())
        _check(out)
        return out

    def _rename(self, old: str, new: str) -> None:
        t = self.tensors.pop(old)
        self.tensors[new] = Tensor(new, t.shape, t.dtype, t.data, t.quant)
        self.nodes = [m.with_(inputs=tuple(new if i == old else i for i in m.inputs),
                              outputs=tuple(new if o == old else o for o in m.outputs)) for m in self.nodes]
        for k, v in list(self.env.items()):
            if v.name == old:
                self.env[k] = _Val(new, v.layout)

    def refuse(self, n: Node, why: str) -> None:
        self.unsupported.append((n.name, n.op, n.domain or "", self.g.opset, why))

    # -- requantization / clamp (an Add of a zero scalar) -------------------------------------
    def requant(self, n: Node, src: str, src_q: tuple[float, int], out_logical: str, out_q: tuple[float, int], layout: Any,
                act: tuple[int, int] | None = None, out_name: str | None = None) -> str:
        s_in, z_in = src_q
        zero = self.add_const(f"{n.name}_zero", np.array([0], np.int8), qp(s_in, 0))
        p = q.add_attrs(s_in, z_in, s_in, 0, out_q[0], out_q[1], "NONE")
        if act is not None:
            p["act_min"], p["act_max"] = act
        shape = self.tensors[src].shape
        return self.emit(n, "Add", [src, zero], out_logical, shape, out_q, layout, dict(p, fused_activation="REQUANTIZE"),
                         out_name=out_name)

    def finish(self, n: Node, op: str, inputs: list[str], shape: Sequence[int], in_q: tuple[float, int], layout: Any,
               attrs: dict, fixed_out: tuple[float, int] | None = None, same_quant: bool = False) -> None:
        """Emit an op whose output parameters may be fixed by the kernel (softmax...) or
        equal to its input's (pooling, pad); requantize to the model's when they differ."""
        out, bounds, _ = self.out_info(n)
        want = self.quant_of(out)
        kernel_q = fixed_out or (in_q if same_quant else want)
        if _same_q(kernel_q, want):
            if "act_min" in attrs:
                attrs["act_min"], attrs["act_max"] = clamp_range(bounds, *want)
            self.emit(n, op, inputs, out, shape, want, layout, attrs)
            return
        tmp = self.emit(n, op, inputs, "", shape, kernel_q, layout, attrs, out_name=self.fresh(f"{out}_{op.lower()}"))
        self.requant(n, tmp, kernel_q, out, want, layout, act=clamp_range(bounds, *want))

    # -- weights -------------------------------------------------------------------------
    def weights(self, n: Node, name: str, axis: int, allow_zp: bool) -> tuple[np.ndarray, np.ndarray, int]:
        """(int8 data, float32 per-channel scales along `axis` (size of that dim), zero point)."""
        t = _const(self.g, name, n, "weight")
        d = np.asarray(t.data)
        channels = d.shape[axis]
        if t.quant is None or np.issubdtype(d.dtype, np.floating):
            wq, s = quantize_per_channel(dequantize_const(t), axis)
            return wq, s, 0
        scale, zp = t.quant.scale.reshape(-1).astype(np.float32), t.quant.zero_point.reshape(-1).astype(np.int64)
        if scale.size > 1 and t.quant.axis % d.ndim != axis:
            raise Unsupported(f"weight '{name}' is quantized per channel along axis {t.quant.axis}; "
                              f"edgec needs the output-channel axis {axis}")
        if d.dtype == np.uint8:
            if np.all(zp == 128) or allow_zp:
                d = (d.astype(np.int16) - 128).astype(np.int8)
                zp = zp - 128
            else:
                raise Unsupported(f"weight '{name}' is uint8 with zero point {zp.tolist()[:4]} "
                                  "(int8 kernels need symmetric weights: zero point 0, or uint8 with 128)")
        elif d.dtype != np.int8:
            raise Unsupported(f"weight '{name}' has dtype {d.dtype} (int8 or uint8 expected)")
        if np.any(zp != 0):
            if not allow_zp or zp.size > 1 and np.any(zp != zp[0]):
                raise Unsupported(f"weight '{name}' has non-zero zero point {sorted(set(zp.tolist()))[:4]} "
                                  "(this int8 kernel takes symmetric weights only)")
        if scale.size == 1:
            scale = np.repeat(scale, channels)
        elif scale.size != channels:
            raise Unsupported(f"weight '{name}' has {scale.size} scales for {channels} channels")
        return d.astype(np.int8), scale.astype(np.float32), int(zp.reshape(-1)[0])

    def bias(self, n: Node, name: str | None, in_scale: float, w_scales: np.ndarray, beta: float = 1.0) -> str | None:
        if not name:
            return None
        t = _const(self.g, name, n, "bias")
        eff = (np.float32(in_scale) * w_scales.astype(np.float32)).astype(np.float32)  # TFLite / ORT: float32 product
        d = np.asarray(t.data)
        if d.size != w_scales.size:
            raise Unsupported(f"bias '{name}' has {d.size} values for {w_scales.size} output channels")
        d = d.reshape(-1)
        if (t.quant is not None and d.dtype == np.int32 and beta == 1.0 and np.all(t.quant.zero_point == 0)
                and np.array_equal(np.broadcast_to(t.quant.scale.astype(np.float32).reshape(-1), eff.shape), eff)):
            b = d.astype(np.int32)
        else:
            real = dequantize_const(t).reshape(-1) * beta
            b = np.clip(np.round(real / eff.astype(np.float64)), qmath.INT32_MIN, qmath.INT32_MAX).astype(np.int32)
        return self.add_const(f"{name}_i32", b, QuantParams(eff, np.zeros(eff.size, np.int32), 0))

    # -- ops -----------------------------------------------------------------------------
    def _rank4(self, n: Node, v: _Val, name: str) -> None:
        if not is_nhwc(v.layout):
            raise Unsupported(f"input '{name}' must be a rank-4 NCHW activation (got rank {len(self.g.tensors[name].shape)})")

    def op_Conv(self, n: Node) -> None:
        x = n.inputs[0]
        v = self.val(x)
        self._rank4(n, v, x)
        s_x, z_x = self.quant_of(x)
        xt = self.g.tensors[x]
        wt = _const(self.g, n.inputs[1], n, "weight")
        if len(wt.shape) != 4:
            raise Unsupported(f"weight rank {len(wt.shape)} (2-D convolutions only)")
        o, ig, kh, kw = wt.shape
        c = xt.shape[1]
        group = int(n.attrs.get("group", 1))
        win = window(n, xt.shape[2:], tuple(n.attrs.get("kernel_shape", (kh, kw))))
        wq, ws, _ = self.weights(n, n.inputs[1], 0, allow_zp=False)
        out, bounds, _ = self.out_info(n)
        s_y, z_y = self.quant_of(out)
        b = self.bias(n, n.inputs[2] if len(n.inputs) > 2 else None, s_x, ws)
        mult, shift = q.conv_requant(s_x, ws, s_y, o)
        lo, hi = clamp_range(bounds, s_y, z_y)
        attrs = dict(pads=(win.pads_begin[0], win.pads_begin[1], win.pads_end[0], win.pads_end[1]), strides=tuple(win.strides),
                     dilations=tuple(win.dilations), padding="EXPLICIT", input_zp=z_x, output_zp=z_y, out_mult=mult,
                     out_shift=shift, act_min=lo, act_max=hi, fused_activation=activation_name(bounds))
        if group == c and ig == 1 and group > 1:
            wname = self.add_const(f"{n.inputs[1]}_1hwc", wq.transpose(1, 2, 3, 0), QuantParams(ws, np.zeros(o, np.int32), 3))
            attrs["depth_multiplier"] = o // c
            op = "DepthwiseConv2D"
        else:
            if c != ig * group:
                raise Unsupported(f"input channels {c} != weight depth {ig} x group {group}")
            wname = self.add_const(f"{n.inputs[1]}_ohwi", wq.transpose(0, 2, 3, 1), QuantParams(ws, np.zeros(o, np.int32), 0))
            op = "Conv2D"
        shape = (xt.shape[0], win.out[0], win.out[1], o)
        self.emit(n, op, [v.name, wname] + ([b] if b else []), out, shape, (s_y, z_y), NHWC, attrs)

    def op_BatchNormalization(self, n: Node) -> None:
        x = n.inputs[0]
        v = self.val(x)
        xshape = self.g.tensors[x].shape
        flat = len(xshape) == 2 and isinstance(v.layout, str) and v.layout == PLAIN
        if not flat:
            self._rank4(n, v, x)
        if n.attrs.get("training_mode", 0) or any(n.outputs[1:]):
            raise Unsupported("training-mode BatchNormalization")
        gamma, beta, mean, var = (dequantize_const(_const(self.g, i, n, "BN parameter")).reshape(-1) for i in n.inputs[1:5])
        a = gamma / np.sqrt(var + float(n.attrs.get("epsilon", 1e-5)))
        b = beta - mean * a
        s_x, z_x = self.quant_of(x)
        c = self.g.tensors[x].shape[1]
        ws = np.where(a != 0, np.abs(a) / 127.0, 1.0).astype(np.float32)
        wq = np.where(a > 0, 127, np.where(a < 0, -127, 0)).astype(np.int8)
        out, bounds, _ = self.out_info(n)
        s_y, z_y = self.quant_of(out)
        eff = (np.float32(s_x) * ws).astype(np.float64)
        bias = np.clip(np.round(b / eff), qmath.INT32_MIN, qmath.INT32_MAX).astype(np.int32)
        wname = self.add_const(f"{n.name}_scale_1hwc", wq.reshape(1, 1, 1, c), QuantParams(ws, np.zeros(c, np.int32), 3))
        bname = self.add_const(f"{n.name}_shift_i32", bias, QuantParams(eff.astype(np.float32), np.zeros(c, np.int32), 0))
        mult, shift = q.conv_requant(s_x, ws, s_y, c)
        lo, hi = clamp_range(bounds, s_y, z_y)
        attrs = dict(pads=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1), padding="VALID", depth_multiplier=1, input_zp=z_x,
                     output_zp=z_y, out_mult=mult, out_shift=shift, act_min=lo, act_max=hi,
                     fused_activation=activation_name(bounds))
        if flat:  # BatchNorm1d on (N, C): the same per-channel affine on a free (N, 1, 1, C) view
            view = self.emit(n, "Reshape", [v.name], "", (xshape[0], 1, 1, c), (s_x, z_x), NHWC,
                             dict(shape=(xshape[0], 1, 1, c)), out_name=self.fresh(f"{x}_nhwc"))
            y4 = self.emit(n, "DepthwiseConv2D", [view, wname, bname], "", (xshape[0], 1, 1, c), (s_y, z_y), NHWC, attrs,
                           out_name=self.fresh(f"{out}_nhwc"))
            self.emit(n, "Reshape", [y4], out, tuple(xshape), (s_y, z_y), PLAIN, dict(shape=tuple(xshape)))
            return
        self.emit(n, "DepthwiseConv2D", [v.name, wname, bname], out, self.tensors[v.name].shape, (s_y, z_y), NHWC, attrs)

    def _fc(self, n: Node, wname_in: str, trans_b: bool, alpha: float, bias: str | None, beta: float) -> None:
        x = n.inputs[0]
        v = self.val(x)
        xt = self.g.tensors[x]
        if is_nhwc(v.layout):
            raise Unsupported(f"input '{x}' is a rank-4 activation (flatten it first)")
        s_x, z_x = self.quant_of(x)
        wt = _const(self.g, wname_in, n, "weight")
        if len(wt.shape) != 2:
            raise Unsupported(f"weight '{wname_in}' has rank {len(wt.shape)} (2 expected)")
        axis = 0 if trans_b else 1
        wq, ws, wzp = self.weights(n, wname_in, axis, allow_zp=True)
        w = wq if trans_b else wq.T  # (units, depth)
        if wzp != 0 and np.unique(ws).size > 1:
            raise Unsupported(f"weight '{wname_in}': per-channel scales with a non-zero zero point")
        if alpha != 1.0:
            ws = (ws * np.float32(abs(alpha))).astype(np.float32)
            if alpha < 0:
                if wzp != 0:
                    raise Unsupported("negative alpha with a non-zero weight zero point")
                w = np.clip(-w.astype(np.int16), -127, 127).astype(np.int8)
        units, depth = w.shape
        if is_perm(v.layout):
            w = w[:, v.layout]
        if xt.shape[-1] != depth:
            raise Unsupported(f"input depth {xt.shape[-1]} != weight depth {depth}")
        out, bounds, _ = self.out_info(n)
        s_y, z_y = self.quant_of(out)
        per_channel = np.unique(ws).size > 1
        fs = ws if per_channel else ws[:1]
        b = self.bias(n, bias, s_x, ws, beta)
        mult, shift = q.fc_requant(s_x, fs, s_y)
        wname = self.add_const(f"{wname_in}_fc", np.ascontiguousarray(w),
                               QuantParams(fs.astype(np.float32), np.full(fs.size, wzp, np.int32), 0))
        lo, hi = clamp_range(bounds, s_y, z_y)
        keep = len(xt.shape) != 2
        attrs = dict(input_zp=z_x, output_zp=z_y, filter_zp=wzp, out_mult=mult, out_shift=shift, act_min=lo, act_max=hi,
                     keep_num_dims=keep, fused_activation=activation_name(bounds))
        shape = tuple(xt.shape[:-1]) + (units,)
        self.emit(n, "FullyConnected", [v.name, wname] + ([b] if b else []), out, shape, (s_y, z_y), PLAIN, attrs)

    def op_Gemm(self, n: Node) -> None:
        if n.attrs.get("transA", 0):
            raise Unsupported("transA=1")
        if len(self.g.tensors[n.inputs[0]].shape) != 2:
            raise Unsupported("input must be rank 2")
        c = n.inputs[2] if len(n.inputs) > 2 and n.inputs[2] else None
        if c is not None:
            ct = _const(self.g, c, n, "bias C")
            if ct.data.size != self.g.tensors[n.outputs[0]].shape[-1] or (len(ct.shape) == 2 and ct.shape[0] != 1):
                raise Unsupported(f"bias C of shape {ct.shape} (a per-unit vector expected)")
        self._fc(n, n.inputs[1], bool(n.attrs.get("transB", 0)), float(n.attrs.get("alpha", 1.0)), c,
                 float(n.attrs.get("beta", 1.0)))

    def op_MatMul(self, n: Node) -> None:
        if not self.g.is_const(n.inputs[1]):
            raise Unsupported("both operands are run-time tensors (only constant weights are supported)")
        if len(self.g.tensors[n.inputs[1]].shape) != 2:
            raise Unsupported("weights must be rank 2")
        self._fc(n, n.inputs[1], False, 1.0, None, 1.0)

    def _binary(self, n: Node, kind: str) -> None:
        a, b = n.inputs[0], n.inputs[1]
        out, bounds, _ = self.out_info(n)
        s_y, z_y = self.quant_of(out)
        out_shape = self.g.tensors[n.outputs[0]].shape
        names, qs, layout = [], [], None
        runtime = [i for i in (a, b) if not self.g.is_const(i)]
        if not runtime:
            raise Unsupported("both inputs are constants")
        layout = self.val(runtime[0]).layout
        if len(runtime) == 2 and not _same_layout(layout, self.val(runtime[1]).layout):
            raise Unsupported("inputs stored in different layouts")
        for i in (a, b):
            t = self.g.tensors[i]
            if self.g.is_const(i):
                if t.size != 1 and tuple(t.shape) != tuple(out_shape):
                    raise Unsupported(f"constant '{i}' of shape {t.shape} broadcasts (the int8 kernel takes equal shapes or a scalar)")
                if t.quant is not None and np.issubdtype(t.data.dtype, np.integer) and t.quant.scale.size == 1:
                    sq, zq = float(t.quant.scale.reshape(-1)[0]), int(t.quant.zero_point.reshape(-1)[0])
                    data = t.data.astype(np.int64)
                    if t.data.dtype == np.uint8:
                        data, zq = data - 128, zq - 128
                else:
                    real = dequantize_const(t)
                    sq, zq = choose_qparams(float(real.min()), float(real.max()))
                    data = np.clip(np.round(real / sq) + zq, -128, 127)
                data = np.asarray(data).astype(np.int8)
                if t.size == 1:
                    data = data.reshape(1)
                else:
                    data = data.reshape(out_shape)
                    if is_nhwc(layout):
                        data = np.transpose(data, NCHW_TO_NHWC)
                    elif is_perm(layout):
                        data = data[:, layout]
                names.append(self.add_const(f"{i}_q", data, qp(sq, zq)))
                qs.append((sq, zq))
            else:
                if t.size != 1 and tuple(t.shape) != tuple(out_shape):
                    raise Unsupported(f"input '{i}' of shape {t.shape} broadcasts to {tuple(out_shape)} "
                                      "(the int8 kernel takes equal shapes or a scalar)")
                names.append(self.val(i).name)
                qs.append(self.quant_of(i))
        if kind == "Add":
            p = q.add_attrs(qs[0][0], qs[0][1], qs[1][0], qs[1][1], s_y, z_y, "NONE")
        else:
            p = q.mul_attrs(qs[0][0], qs[0][1], qs[1][0], qs[1][1], s_y, z_y, "NONE")
        p["act_min"], p["act_max"] = clamp_range(bounds, s_y, z_y)
        p["fused_activation"] = activation_name(bounds)
        self.emit(n, kind, names, out, self.physical_shape(out_shape, layout), (s_y, z_y), layout, p)

    def op_Add(self, n: Node) -> None:
        self._binary(n, "Add")

    def op_Mul(self, n: Node) -> None:
        self._binary(n, "Mul")

    def op_Relu(self, n: Node) -> None:  # not fusible: requantize + clamp
        self._standalone_activation(n)

    def op_Clip(self, n: Node) -> None:
        self._standalone_activation(n)

    def _standalone_activation(self, n: Node) -> None:
        x = n.inputs[0]
        v = self.val(x)
        s_x, z_x = self.quant_of(x)
        out, bounds, _ = self.out_info(n)
        bounds = [activation_bounds(self.g, n)] + bounds
        s_y, z_y = self.quant_of(out)
        self.requant(n, v.name, (s_x, z_x), out, (s_y, z_y), v.layout, act=clamp_range(bounds, s_y, z_y))

    def _pool_geometry(self, n: Node, xt: Tensor, kernel, ceil: bool) -> tuple[tuple, tuple, tuple]:
        win = window(n, xt.shape[2:], kernel, ceil)
        if any(d != 1 for d in win.dilations):
            raise Unsupported("dilated pooling")
        pb = list(win.pads_end)
        for k in range(2):  # ceil mode: extend the end padding so the floor formula gives the same size
            while (xt.shape[2 + k] + win.pads_begin[k] + pb[k] - kernel[k]) // win.strides[k] + 1 < win.out[k]:
                pb[k] += 1
        return (win.pads_begin[0], win.pads_begin[1], pb[0], pb[1]), tuple(win.strides), tuple(win.out)

    def op_MaxPool(self, n: Node) -> None:
        x = n.inputs[0]
        v = self.val(x)
        self._rank4(n, v, x)
        if len(n.outputs) > 1 and n.outputs[1]:
            raise Unsupported("the Indices output")
        xt = self.g.tensors[x]
        kernel = tuple(n.attrs["kernel_shape"])
        pads, strides, out_hw = self._pool_geometry(n, xt, kernel, bool(n.attrs.get("ceil_mode", 0)))
        attrs = dict(kernel=kernel, pads=pads, strides=strides, padding="EXPLICIT", act_min=-128, act_max=127)
        shape = (xt.shape[0], out_hw[0], out_hw[1], xt.shape[1])
        self.finish(n, "MaxPool2D", [v.name], shape, self.quant_of(x), NHWC, attrs, same_quant=True)

    def _avg(self, n: Node, kernel, pads_attr: bool) -> None:
        x = n.inputs[0]
        v = self.val(x)
        self._rank4(n, v, x)
        xt = self.g.tensors[x]
        s_x, z_x = self.quant_of(x)
        if pads_attr:
            pads, strides, out_hw = self._pool_geometry(n, xt, kernel, bool(n.attrs.get("ceil_mode", 0)))
        else:
            pads, strides, out_hw = (0, 0, 0, 0), (1, 1), (1, 1)
        out, bounds, _ = self.out_info(n)
        s_y, z_y = self.quant_of(out)
        c = xt.shape[1]
        shape = (xt.shape[0], out_hw[0], out_hw[1], c)
        padded = any(pads)
        include_pad = bool(n.attrs.get("count_include_pad", 0))
        win_ok = not padded or (include_pad and not bool(n.attrs.get("ceil_mode", 0)))
        if win_ok and (include_pad and padded or not _same_q((s_x, z_x), (s_y, z_y))):
            # fixed divisor: a depthwise conv with unit weights at scale 1/(kh*kw) (single rounding)
            k = kernel[0] * kernel[1]
            ws = np.full(c, np.float32(1.0 / k), np.float32)
            wname = self.add_const(f"{n.name}_ones", np.ones((1, kernel[0], kernel[1], c), np.int8),
                                   QuantParams(ws, np.zeros(c, np.int32), 3))
            mult, shift = q.conv_requant(s_x, ws, s_y, c)
            lo, hi = clamp_range(bounds, s_y, z_y)
            attrs = dict(pads=pads, strides=strides, dilations=(1, 1), padding="EXPLICIT", depth_multiplier=1, input_zp=z_x,
                         output_zp=z_y, out_mult=mult, out_shift=shift, act_min=lo, act_max=hi,
                         fused_activation=activation_name(bounds), average=k)
            self.emit(n, "DepthwiseConv2D", [v.name, wname], out, shape, (s_y, z_y), NHWC, attrs)
            return
        if padded and include_pad:
            raise Unsupported("count_include_pad=1 with ceil_mode")
        attrs = dict(kernel=tuple(kernel), pads=pads, strides=strides, padding="EXPLICIT", act_min=-128, act_max=127)
        self.finish(n, "AveragePool2D", [v.name], shape, (s_x, z_x), NHWC, attrs, same_quant=True)

    def op_AveragePool(self, n: Node) -> None:
        self._avg(n, tuple(n.attrs["kernel_shape"]), True)

    def op_GlobalAveragePool(self, n: Node) -> None:
        xt = self.g.tensors[n.inputs[0]]
        if len(xt.shape) != 4:
            raise Unsupported(f"input rank {len(xt.shape)} (4 expected)")
        self._avg(n, tuple(xt.shape[2:]), False)

    def op_ReduceMean(self, n: Node) -> None:
        xt = self.g.tensors[n.inputs[0]]
        axes = n.attrs.get("axes")
        if axes is None and len(n.inputs) > 1 and n.inputs[1]:
            axes = _const(self.g, n.inputs[1], n, "axes").data.reshape(-1).tolist()
        if len(xt.shape) != 4 or sorted(int(a) % 4 for a in (axes or [])) != [2, 3] or not n.attrs.get("keepdims", 1):
            raise Unsupported("only the mean over H and W with keepdims=1 (global average pooling)")
        self._avg(n, tuple(xt.shape[2:]), False)

    def _softmax_axis_ok(self, n: Node, xt: Tensor, layout: Any) -> bool:
        rank = len(xt.shape)
        opset = int(n.attrs.get("_opset", self.g.opset))
        axis = int(n.attrs.get("axis", -1 if opset >= 13 else 1)) % rank
        reduced = [axis] if opset >= 13 else list(range(axis, rank))
        reduced = [a for a in reduced if xt.shape[a] != 1] or [axis]
        perm = NCHW_TO_NHWC if is_nhwc(layout) else tuple(range(rank))
        phys = sorted(perm.index(a) for a in reduced)
        return len(phys) == 1 and (phys[0] == rank - 1 or all(xt.shape[perm[k]] == 1 for k in range(phys[0] + 1, rank)))

    def op_Softmax(self, n: Node) -> None:
        x = n.inputs[0]
        v = self.val(x)
        if is_perm(v.layout):
            raise Unsupported("softmax of a flattened NCHW tensor")
        xt = self.g.tensors[x]
        if not self._softmax_axis_ok(n, xt, v.layout):
            raise Unsupported("softmax over an axis other than the innermost (channels)")
        s_x, _ = self.quant_of(x)
        out, bounds, _ = self.out_info(n)
        want = self.quant_of(out)
        shape = self.tensors[v.name].shape
        if _same_q(SOFTMAX_OUT, want) or bounds or shape[-1] > 2047:
            # TFLite's fixed-point kernel (then a requantization if the output differs)
            attrs = dict(beta=1.0, **q.softmax_attrs(1.0, s_x))
            self.finish(n, "Softmax", [v.name], shape, self.quant_of(x), v.layout, attrs, fixed_out=SOFTMAX_OUT)
            return
        # any other output scale (calibrated QDQ models): one rounding to it, not two
        table, recip = qmath.softmax_lut_params(s_x, 1.0, want[0])
        self.emit(n, "SoftmaxLut", [v.name], out, shape, want, v.layout,
                  dict(exp_table=tuple(int(t) for t in table), recip=recip, output_zp=int(want[1])))

    def _sigmoid_like(self, n: Node, op: str, fixed: tuple[float, int], fn) -> None:
        """TFLite's fixed-point kernel where the output has its fixed scale (TFLite
        models); at any other output scale (ONNX QDQ / QOperator models) a table of
        the float function (dequantize, fn, quantize: onnxruntime's arithmetic)
        instead of the fixed-point kernel plus a requantization, which would round twice."""
        x = n.inputs[0]
        v = self.val(x)
        s_x, z_x = self.quant_of(x)
        out, bounds, _ = self.out_info(n)
        want = self.quant_of(out)
        shape = self.tensors[v.name].shape
        if _same_q(fixed, want):
            self.emit(n, op, [v.name], out, shape, want, v.layout, q.sigmoid_tanh_attrs(s_x, z_x))
            return
        lo, hi = clamp_range(bounds, *want)
        table = qmath.float_function_lut_s8(fn, s_x, z_x, want[0], want[1], lo, hi)
        self.emit(n, "Lut", [v.name], out, shape, want, v.layout, dict(table=tuple(int(t) for t in table), function=op))

    def op_Sigmoid(self, n: Node) -> None:
        self._sigmoid_like(n, "Logistic", LOGISTIC_OUT, lambda v: 1.0 / (1.0 + np.exp(-v)))

    def op_Tanh(self, n: Node) -> None:
        self._sigmoid_like(n, "Tanh", TANH_OUT, np.tanh)

    def op_Concat(self, n: Node) -> None:
        xs = [i for i in n.inputs if i]
        vals = [self.val(i) for i in xs]
        layouts = {"perm" if is_perm(v.layout) else v.layout for v in vals}
        if layouts != {NHWC} and layouts != {PLAIN}:
            raise Unsupported("inputs in different layouts (or flattened NCHW tensors)")
        layout = vals[0].layout
        rank = len(self.g.tensors[xs[0]].shape)
        axis = int(n.attrs.get("axis")) % rank
        phys_axis = NCHW_TO_NHWC.index(axis) if is_nhwc(layout) else axis
        out, bounds, _ = self.out_info(n)
        want = self.quant_of(out)
        names = []
        for i, v in zip(xs, vals):
            qi = self.quant_of(i)
            if _same_q(qi, want):
                names.append(v.name)
            else:
                names.append(self.requant(n, v.name, qi, "", want, layout, out_name=self.fresh(f"{i}_rq")))
        if bounds:
            raise Unsupported("an activation fused after Concat")
        shape = self.physical_shape(self.g.tensors[n.outputs[0]].shape, layout)
        self.emit(n, "Concatenation", names, out, shape, want, layout, dict(axis=phys_axis))

    def op_Pad(self, n: Node) -> None:
        x = n.inputs[0]
        v = self.val(x)
        xt = self.g.tensors[x]
        rank = len(xt.shape)
        mode = n.attrs.get("mode", "constant")
        if mode != "constant":
            raise Unsupported(f"mode '{mode}' (constant only)")
        if len(n.inputs) > 1 and n.inputs[1]:
            pads = [int(p) for p in _const(self.g, n.inputs[1], n, "pads").data.reshape(-1)]
        else:
            pads = [int(p) for p in n.attrs.get("pads", [])]
        axes = list(range(rank))
        if len(n.inputs) > 3 and n.inputs[3]:
            axes = [int(a) % rank for a in _const(self.g, n.inputs[3], n, "axes").data.reshape(-1)]
        per = {a: (0, 0) for a in range(rank)}
        for k, a in enumerate(axes):
            per[a] = (pads[k], pads[k + len(axes)])
        if any(b < 0 or e < 0 for b, e in per.values()):
            raise Unsupported("negative pads (cropping)")
        value = 0.0
        if len(n.inputs) > 2 and n.inputs[2]:
            value = float(dequantize_const(_const(self.g, n.inputs[2], n, "constant_value")).reshape(-1)[0])
        if is_perm(v.layout):
            raise Unsupported("padding a flattened NCHW tensor")
        perm = NCHW_TO_NHWC if is_nhwc(v.layout) else tuple(range(rank))
        phys = tuple(per[perm[k]] for k in range(rank))
        s_x, z_x = self.quant_of(x)
        pad_value = int(np.clip(_q_bound(value, s_x, z_x), -128, 127))
        shape = self.physical_shape(self.g.tensors[n.outputs[0]].shape, v.layout)
        self.finish(n, "Pad", [v.name], shape, (s_x, z_x), v.layout, dict(pads=phys, pad_value=pad_value), same_quant=True)

    def _alias(self, n: Node) -> None:
        x = n.inputs[0]
        v = self.val(x)
        xt = self.g.tensors[x]
        yt = self.g.tensors[n.outputs[0]]
        in_shape, out_shape = tuple(xt.shape), tuple(yt.shape)
        layout = v.layout
        nchw_order_same = is_nhwc(layout) and (in_shape[1] == 1 or in_shape[2] * in_shape[3] == 1)
        if is_nhwc(layout) and in_shape == out_shape:
            new_layout = NHWC
        elif is_nhwc(layout) and not nchw_order_same:
            if len(out_shape) == 2 and out_shape[0] == in_shape[0] and out_shape[1] == int(np.prod(in_shape[1:])):
                c, h, w = in_shape[1:]
                new_layout = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
            else:
                raise Unsupported(f"reshape of an NCHW activation {in_shape} -> {out_shape} (would need a transpose in NHWC)")
        elif is_perm(layout):
            if out_shape != in_shape:
                raise Unsupported(f"reshape of a flattened NCHW tensor {in_shape} -> {out_shape}")
            new_layout = layout
        else:  # PLAIN (or NHWC whose bytes are in NCHW order)
            if len(out_shape) == 4 and not (out_shape[1] == 1 or out_shape[2] * out_shape[3] == 1):
                raise Unsupported(f"reshape to a rank-4 activation {out_shape} (would need a transpose to NHWC)")
            new_layout = NHWC if len(out_shape) == 4 else PLAIN
        phys = self.physical_shape(out_shape, new_layout)
        out = n.outputs[0]
        s_x, z_x = self.quant_of(x)
        t_out = self.g.tensors[out]
        want = per_tensor(t_out) or (s_x, z_x)
        if self.fused.get(id(n)):
            raise Unsupported("an activation fused after a reshape")
        if _same_q((s_x, z_x), want):
            if phys == self.tensors[v.name].shape:
                self.env[out] = _Val(v.name, new_layout)
                if out in self.g.outputs:  # an output needs its own tensor
                    self.emit(n, "Reshape", [v.name], out, phys, want, new_layout, dict(shape=phys))
                return
            self.emit(n, "Reshape", [v.name], out, phys, want, new_layout, dict(shape=phys))
            return
        src = v.name
        if phys != self.tensors[v.name].shape:
            src = self.emit(n, "Reshape", [v.name], "", phys, (s_x, z_x), new_layout, dict(shape=phys),
                            out_name=self.fresh(f"{out}_reshaped"))
        self.requant(n, src, (s_x, z_x), out, want, new_layout)

    op_Reshape = op_Flatten = op_Squeeze = op_Unsqueeze = op_Identity = op_Dropout = _alias


def is_nhwc(layout: Any) -> bool:
    return isinstance(layout, str) and layout == NHWC


def is_perm(layout: Any) -> bool:
    return isinstance(layout, np.ndarray)


def _same_layout(a: Any, b: Any) -> bool:
    if is_perm(a) or is_perm(b):
        return is_perm(a) and is_perm(b) and np.array_equal(a, b)
    return a == b


def _same_q(a: tuple[float, int], b: tuple[float, int]) -> bool:
    return np.float32(a[0]) == np.float32(b[0]) and int(a[1]) == int(b[1])


def _check(g: Graph) -> None:
    """Every node's shape function and check agree with the tensors we made."""
    for n in g.nodes:
        d = lookup(n.op, n.domain)
        ins = [g.tensors[i] if i else None for i in n.inputs]
        why = d.check(n, ins) if d.check else None
        if why:
            raise ModelError(f"int8 node '{n.name}' ({n.op}): {why}")
        (shape, dtype), = d.shape(n, ins)[:1]
        t = g.tensors[n.outputs[0]]
        if tuple(shape) != tuple(t.shape) or dtype != t.dtype:
            raise ModelError(f"int8 node '{n.name}' ({n.op}): computes {tuple(shape)} {dtype}, expected {t.shape} {t.dtype}")


def unsupported_nodes(g: Graph) -> list[tuple[str, str, str, int, str]]:
    """A quick scan of a float graph for op types with no int8 equivalent."""
    out = []
    for n in g.nodes:
        if n.domain not in ("", "ai.onnx") or n.op not in SUPPORTED:
            out.append((n.name, n.op, n.domain or "", g.opset, "no int8 (edgec.q) equivalent"))
        elif n.op == "MatMul" and not g.is_const(n.inputs[1]):
            out.append((n.name, n.op, "", g.opset, "both operands are run-time tensors (only constant weights are supported)"))
    return out


def to_int8(g: Graph) -> Graph:
    """Annotated float graph -> edgec.q graph (see the module docstring)."""
    return _Converter(g).run()


def run_reference(g: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run a graph with the ops' NumPy references (edgec.q: bit-exact integer maths),
    inputs in graph order."""
    return interpret.run_reference(g, {name: np.asarray(x) for name, x in zip(g.inputs, inputs)})


PASS = GraphPass("to_nhwc_int8", to_int8, doc="annotated float NCHW graph -> edgec.q NHWC graph")

__all__ = ["PASS", "to_int8", "run_reference", "choose_qparams", "quantize_per_channel", "api_layout", "to_api",
           "from_api", "unsupported_nodes", "SOFTMAX_OUT", "LOGISTIC_OUT", "TANH_OUT", "qp", "per_tensor"]


def fused_intermediates(g: Graph) -> set[str]:
    """Tensors that vanish into a fused activation (their producer clamps instead)."""
    c = _Converter.__new__(_Converter)
    c.g, c.prod, c.cons, c.fused, c.skip = g, g.producers(), g.consumers(), {}, set()
    c._plan_fusion()
    return {a.inputs[0] for chain in c.fused.values() for a in chain}
