"""Quantized ONNX -> edgec.q integer graph (QDQ and QOperator formats).

Both formats are read into one *annotated float graph* (plain ONNX ops in
NCHW whose tensors carry int8 quantization parameters, see
`edgec/passes/to_nhwc_int8.py`), which the shared converter turns into
edgec.q ops in NHWC. Nothing runs as fake-quantized float: every Conv / Gemm /
Add ... of the result is an integer kernel with TFLite's fixed-point
requantization, using the model's own int8 weights and int32 biases.

* **QDQ** (onnxruntime `quantize_static(..., QuantFormat.QDQ)`, torch
  exporters): `QuantizeLinear` gives a float tensor its parameters,
  `DequantizeLinear` of a runtime tensor is the same value again, and
  `DequantizeLinear` of an integer initializer is a quantized weight/bias.
  A float op between DequantizeLinear inputs and a QuantizeLinear output is an
  integer op; Relu/Clip between two such ops are fused as clamps.
* **QOperator** (`QuantFormat.QOperator`): QLinearConv, QLinearMatMul,
  QLinearAdd / QLinearMul / QLinearGlobalAveragePool / QLinearAveragePool /
  QLinearSigmoid / QLinearConcat / QLinearSoftmax / QGemm (com.microsoft),
  MatMulInteger / ConvInteger followed by their Cast -> Mul(scale) [-> Add(bias)]
  rescale, with QuantizeLinear / DequantizeLinear at the float boundaries.
  Shape ops and MaxPool applied to integer tensors keep their parameters.

uint8 activations (onnxruntime's default) become int8 exactly: values and zero
points shift by -128 (so uint8 model inputs/outputs appear as int8 `q - 128` in
the C API). uint8 weights are shifted when their zero point is 128 (or where
the kernel takes a filter offset: fully connected). Per-channel activations,
int16/uint16/int4/float8 tensors, non-zero conv weight zero points and
dynamic quantization (DynamicQuantizeLinear) are refused naming the tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import onnx.inliner
from onnx import numpy_helper

from edgec.errors import ModelError, UnsupportedOpsError
from edgec.frontend.onnx_frontend import (MAX_OPSET, MIN_OPSET, _attr_value, _c_ident, _constant_node_value, _fold,
                                          _np_dtype, _opset, _read_model)
from edgec.ir import Graph, Node, QuantParams, Tensor
from edgec.ops.registry import lookup
from edgec.passes import to_nhwc_int8 as cv

MS = "com.microsoft"
QLINEAR_OPS = {"QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
               "QLinearAveragePool", "QLinearSigmoid", "QLinearConcat", "QLinearSoftmax", "QGemm",
               "MatMulInteger", "ConvInteger"}
MARKERS = QLINEAR_OPS | {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearLeakyRelu",
                         "QLinearReduceMean", "QLinearWhere", "QAttention", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
# float ops that may read an integer tensor directly (same result on the real values)
_INT_PASSTHROUGH = {"MaxPool", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
_ACT_DTYPES = {"int8", "uint8"}


def is_quantized_onnx(path: str | Path) -> bool:
    """True when the model holds quantization ops (QDQ or QOperator)."""
    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - the float loader reports unreadable files
        return False
    return any(n.op_type in MARKERS for n in m.graph.node)


class _Refuse(Exception):
    pass


class _Importer:
    def __init__(self, model: onnx.ModelProto, opset: int, input_shapes: dict):
        self.model = model
        self.opset = opset
        self.input_shapes = input_shapes
        self.consts: dict[str, Tensor] = {}
        self.tensors: dict[str, Tensor] = {}  # annotated graph (logical float tensors + constants)
        self.alias: dict[str, tuple[str, bool]] = {}  # onnx name -> (logical name, is the integer view)
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.unsupported: list[tuple[str, str, str, int, str]] = []
        self.consumed: set[int] = set()  # proto node indices eaten by a pattern
        self.info = {"format": set(), "activation_dtypes": set()}

    # -- values ----------------------------------------------------------------------------
    def const(self, name: str) -> Tensor | None:
        return self.consts.get(name) if name else None

    def const_array(self, name: str, what: str, node) -> np.ndarray:
        t = self.const(name)
        if t is None:
            raise _Refuse(f"{what} '{name}' must be a constant initializer")
        return np.asarray(t.data)

    def resolve(self, name: str) -> tuple[str, bool]:
        if name in self.alias:
            return self.alias[name]
        raise _Refuse(f"reads '{name}', which is not produced by a supported node")

    def quant(self, logical: str) -> tuple[float, int] | None:
        t = self.tensors[logical]
        return None if t.quant is None else cv.per_tensor(t)

    def set_quant(self, logical: str, p: tuple[float, int]) -> None:
        t = self.tensors[logical]
        self.tensors[logical] = Tensor(t.name, t.shape, t.dtype, None, cv.qp(*p))

    def act_params(self, s_name: str, z_name: str | None, tensor: str, node, default_dtype: str = "uint8") -> tuple[float, int]:
        """int8-domain (scale, zero point) of an activation from a node's scale / zero-point inputs."""
        s = self.const_array(s_name, "scale", node).astype(np.float32).reshape(-1)
        if z_name:
            zt = self.const_array(z_name, "zero point", node)
            dtype, z = zt.dtype.name, zt.reshape(-1).astype(np.int64)
        else:
            dtype, z = default_dtype, np.zeros(1, np.int64)
        if s.size != 1 or z.size != 1:
            raise _Refuse(f"tensor '{tensor}' is quantized per channel ({s.size} scales): edgec's int8 kernels take "
                          "per-tensor activations")
        if dtype not in _ACT_DTYPES:
            raise _Refuse(f"tensor '{tensor}' is quantized to {dtype}: edgec's int8 kernels take int8 or uint8 activations "
                          "(int16 / 4-bit / float8 schemes are not supported)")
        if not (s[0] > 0 and np.isfinite(s[0])):
            raise _Refuse(f"tensor '{tensor}' has scale {s[0]}")
        self.info["activation_dtypes"].add(dtype)
        return float(s[0]), int(z[0]) - (128 if dtype == "uint8" else 0)

    def weight(self, q_name: str, s_name: str, z_name: str | None, node, axis: int) -> str:
        """A quantized constant (weights) with raw integer data and QuantParams."""
        data = self.const_array(q_name, "weight", node)
        if data.dtype.name not in ("int8", "uint8"):
            raise _Refuse(f"weight '{q_name}' has dtype {data.dtype} (int8 / uint8 expected)")
        s = self.const_array(s_name, "weight scale", node).astype(np.float32).reshape(-1)
        z = (self.const_array(z_name, "weight zero point", node).reshape(-1).astype(np.int32) if z_name
             else np.zeros(s.size, np.int32))
        if z.size == 1 and s.size > 1:
            z = np.repeat(z, s.size)
        name = self._fresh(f"{q_name}_w")
        self.tensors[name] = Tensor(name, tuple(data.shape), data.dtype.name, data, QuantParams(s, z, axis if s.size > 1 else 0))
        return name

    def bias(self, b_name: str, scale: np.ndarray) -> str:
        data = self.const_array(b_name, "bias", None)
        if data.dtype != np.int32:
            raise _Refuse(f"bias '{b_name}' has dtype {data.dtype} (int32 expected)")
        name = self._fresh(f"{b_name}_b")
        scale = np.asarray(scale, np.float32).reshape(-1)
        self.tensors[name] = Tensor(name, tuple(data.shape), "int32", data, QuantParams(scale, np.zeros(scale.size, np.int32), 0))
        return name

    def _fresh(self, base: str) -> str:
        name, k = base, 2
        while name in self.tensors or name in self.consts:
            name, k = f"{base}_{k}", k + 1
        return name

    def runtime_in(self, name: str, given: tuple[float, int] | None = None) -> str:
        """Logical tensor read by an integer op (its parameters checked against / set from `given`)."""
        logical, _ = self.resolve(name)
        have = self.quant(logical)
        if given is not None:
            if have is None:
                self.set_quant(logical, given)
            elif not cv._same_q(have, given):
                raise _Refuse(f"reads '{name}' with scale/zero point {given}, but it was quantized with {have}")
        return logical

    def new_out(self, name: str, p: tuple[float, int] | None, is_int: bool = True) -> str:
        self.alias[name] = (name, is_int)
        self.tensors[name] = Tensor(name, (), "float32", None, cv.qp(*p) if p else None)
        return name

    # -- node emission ---------------------------------------------------------------------------
    def add_node(self, pnode, op: str, inputs: Sequence[str], outputs: Sequence[str], attrs: dict) -> None:
        node = Node(pnode.name or f"{pnode.op_type}_{len(self.nodes)}", op, tuple(inputs), tuple(outputs),
                    dict(attrs, _opset=self.opset), "")
        opdef = lookup(op, "")
        ins = [self.tensors.get(i) if i else None for i in inputs]
        try:
            specs = opdef.shape(node, ins)
        except Exception as e:  # noqa: BLE001
            raise _Refuse(f"cannot infer its output shape ({type(e).__name__}: {e})") from None
        for o, (shape, _dt) in zip(outputs, specs):
            t = self.tensors[o]
            self.tensors[o] = Tensor(o, tuple(int(d) for d in shape), "float32", None, t.quant)
        self.nodes.append(node)

    # -- the walk -------------------------------------------------------------------------------
    def run(self, name: str) -> Graph:
        g = self.model.graph
        for init in g.initializer:
            arr = numpy_helper.to_array(init)
            self.consts[init.name] = Tensor(init.name, tuple(arr.shape), arr.dtype.name, arr)
        for vi in g.input:
            if vi.name in self.consts:
                continue
            tt = vi.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            shape = self.input_shapes.get(vi.name)
            if shape is None:
                if any(d is None or d <= 0 for d in dims):
                    shown = "x".join("?" if (d is None or d <= 0) else str(d) for d in dims)
                    raise ModelError(f"input '{vi.name}' has a dynamic shape ({shown}); give it with --input-shape {vi.name}=1x...")
                shape = tuple(int(d) for d in dims)
            dtype = _np_dtype(tt.elem_type)
            if dtype not in ("float32", "int8", "uint8"):
                raise ModelError(f"input '{vi.name}' has dtype {dtype} (float32, int8 or uint8 expected)")
            self.tensors[vi.name] = Tensor(vi.name, tuple(shape), "float32", None, None)
            self.alias[vi.name] = (vi.name, dtype != "float32")
            if dtype == "uint8":
                self.info["activation_dtypes"].add("uint8")
            self.inputs.append(vi.name)
        unknown: set[str] = set()
        for idx, p in enumerate(g.node):
            if idx in self.consumed:
                continue
            nname = p.name or f"{p.op_type}_{idx}"
            if p.op_type == "Constant" and p.domain in ("", "ai.onnx"):
                arr = _constant_node_value(p)
                self.consts[p.output[0]] = Tensor(p.output[0], tuple(arr.shape), arr.dtype.name, arr)
                continue
            if any(i in unknown for i in p.input if i):
                unknown.update(o for o in p.output if o)
                continue
            try:
                self.node(idx, p)
            except _Refuse as e:
                self.unsupported.append((nname, p.op_type, p.domain or "", self.opset, str(e)))
                unknown.update(o for o in p.output if o)
            except ModelError:
                raise
            except (ValueError, ArithmeticError, IndexError, KeyError) as e:
                self.unsupported.append((nname, p.op_type, p.domain or "", self.opset,
                                         f"cannot import its parameters ({type(e).__name__}: {e})"))
                unknown.update(o for o in p.output if o)
        if self.unsupported:
            raise UnsupportedOpsError(self.unsupported)
        outputs = []
        for vi in g.output:
            if vi.name not in self.alias:
                raise ModelError(f"graph output '{vi.name}' is a constant or never produced")
            logical, _ = self.alias[vi.name]
            if self.quant(logical) is None and not self._inherits(logical):
                raise ModelError(f"graph output '{vi.name}' is computed in float (no QuantizeLinear / integer op before it): "
                                 "edgec needs the model quantized end to end")
            outputs.append(logical)
        if len(set(outputs)) != len(outputs):
            raise ModelError("two graph outputs are the same tensor")
        # the C API keeps the ONNX output names (the DequantizeLinear outputs)
        rename = {lg: vi.name for lg, vi in zip(outputs, g.output) if lg != vi.name and vi.name not in self.tensors
                  and lg not in self.inputs}
        if rename:
            self.tensors = {rename.get(k, k): (Tensor(rename[k], t.shape, t.dtype, t.data, t.quant) if k in rename else t)
                            for k, t in self.tensors.items()}
            self.nodes = [n.with_(inputs=tuple(rename.get(i, i) for i in n.inputs),
                                  outputs=tuple(rename.get(o, o) for o in n.outputs)) for n in self.nodes]
            outputs = [rename.get(o, o) for o in outputs]
        tensors = dict(self.tensors)
        ann = Graph(name=_c_ident(name), tensors=tensors, nodes=self.nodes, inputs=list(self.inputs), outputs=outputs,
                    opset=self.opset)
        ann = ann.with_nodes(ann.live_nodes())
        for i in ann.inputs:
            if ann.tensors[i].quant is None:
                raise ModelError(f"graph input '{i}' is never quantized (no QuantizeLinear / integer op reads it)")
        return ann

    def _inherits(self, logical: str) -> bool:
        for n in self.nodes:
            if logical in n.outputs and n.op in cv.ALIAS_OPS | {"MaxPool"}:
                return True
        return False

    def node(self, idx: int, p) -> None:
        op, dom = p.op_type, p.domain or ""
        ins = list(p.input)
        attrs = {a.name: _attr_value(a) for a in p.attribute}
        runtime = [i for i in ins if i and i not in self.consts]
        if op == "DynamicQuantizeLinear" or op in ("DynamicQuantizeMatMul", "MatMulIntegerToFloat"):
            raise _Refuse("dynamic quantization (scales computed at run time) is not supported: quantize the model with "
                          "quantize_static")
        if not runtime and op not in ("QuantizeLinear",):
            return self.fold(p, ins, attrs)
        handler = getattr(self, f"op_{op}", None)
        if op in MARKERS - QLINEAR_OPS - {"QuantizeLinear", "DequantizeLinear"} or (handler is None and op in MARKERS):
            raise _Refuse("no int8 (edgec.q) equivalent")
        if handler is not None and (dom in ("", "ai.onnx", MS)):
            if op.startswith("Q") or op in ("MatMulInteger", "ConvInteger", "DequantizeLinear"):
                self.info["format"].add("QOperator" if op not in ("QuantizeLinear", "DequantizeLinear") else "QDQ")
            return handler(idx, p, ins, attrs)
        if dom not in ("", "ai.onnx"):
            raise _Refuse(f"op of domain '{dom}' has no int8 (edgec.q) equivalent")
        return self.float_op(p, ins, attrs)

    def fold(self, p, ins: list[str], attrs: dict) -> None:
        """A node of constants only: quantized weight (DequantizeLinear), reshaped/transposed
        quantized weight (integer data kept), or a float subgraph (folded)."""
        op = p.op_type
        if op == "DequantizeLinear":
            data = self.const_array(ins[0], "input", p)
            s = self.const_array(ins[1], "scale", p).astype(np.float32).reshape(-1)
            z = (self.const_array(ins[2], "zero point", p).reshape(-1).astype(np.int32) if len(ins) > 2 and ins[2]
                 else np.zeros(s.size, np.int32))
            axis = int(attrs.get("axis", 1)) % max(data.ndim, 1) if s.size > 1 else 0
            self.consts[p.output[0]] = Tensor(p.output[0], tuple(data.shape), data.dtype.name, data,
                                              QuantParams(s, z if z.size == s.size else np.repeat(z, s.size), axis))
            return
        src = [self.consts[i] if i else None for i in ins]
        if op in ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten") and src[0].quant is not None \
                and src[0].quant.scale.size == 1:
            node = Node(p.name, op, tuple(ins), tuple(p.output), dict(attrs, _opset=self.opset))
            y = lookup(op).reference(node, [t.data if t is not None else None for t in src])[0]
            self.consts[p.output[0]] = Tensor(p.output[0], tuple(y.shape), y.dtype.name, np.asarray(y), src[0].quant)
            return
        vals = [Tensor(t.name, t.shape, "float32" if t.quant is not None else t.dtype,
                       cv.dequantize_const(t).astype(np.float32) if t.quant is not None else t.data) if t is not None else None
                for t in src]
        node = Node(p.name, op, tuple(ins), tuple(p.output), dict(attrs, _opset=self.opset))
        try:
            ys = _fold(node, p, self.opset, vals, lookup(op))
        except Exception as e:  # noqa: BLE001
            raise _Refuse(f"constant folding failed: {e}") from None
        for o, y in zip(p.output, ys):
            if o:
                self.consts[o] = Tensor(o, tuple(np.shape(y)), np.asarray(y).dtype.name, np.asarray(y))

    # -- QDQ ----------------------------------------------------------------------------------------
    def op_QuantizeLinear(self, idx, p, ins, attrs) -> None:
        x = ins[0]
        if x in self.consts:  # a float weight quantized in the graph: fold to integers
            s = self.const_array(ins[1], "scale", p).astype(np.float32)
            zt = self.const_array(ins[2], "zero point", p) if len(ins) > 2 and ins[2] else np.zeros(1, np.uint8)
            axis = int(attrs.get("axis", 1))
            data = self.consts[x].data.astype(np.float32)
            shp = [1] * data.ndim
            if s.size > 1:
                shp[axis % data.ndim] = -1
            info = np.iinfo(zt.dtype)
            qv = np.clip(np.rint(data / s.reshape(shp)) + zt.astype(np.float32).reshape(shp if zt.size > 1 else [1] * data.ndim),
                         info.min, info.max).astype(zt.dtype)
            self.consts[p.output[0]] = Tensor(p.output[0], qv.shape, qv.dtype.name, qv)
            return
        logical, is_int = self.resolve(x)
        if is_int:
            raise _Refuse(f"quantizes '{x}', which is already an integer tensor")
        zdef = None if len(ins) > 2 and ins[2] else "uint8"
        pq = self.act_params(ins[1], ins[2] if len(ins) > 2 and ins[2] else None, x, p, default_dtype=zdef or "uint8")
        have = self.quant(logical)
        if have is None:
            self.set_quant(logical, pq)
            self.alias[p.output[0]] = (logical, True)
        elif cv._same_q(have, pq):
            self.alias[p.output[0]] = (logical, True)
        else:  # quantized again with other parameters: a requantization
            out = self.new_out(p.output[0], pq)
            self.add_node(p, "Identity", [logical], [out], {})

    def op_DequantizeLinear(self, idx, p, ins, attrs) -> None:
        logical, is_int = self.resolve(ins[0])
        if not is_int:
            raise _Refuse(f"dequantizes '{ins[0]}', which is a float tensor")
        pq = self.act_params(ins[1], ins[2] if len(ins) > 2 and ins[2] else None, ins[0], p,
                             default_dtype="uint8")
        have = self.quant(logical)
        if have is None:
            self.set_quant(logical, pq)
        elif not cv._same_q(have, pq):
            raise _Refuse(f"dequantizes '{ins[0]}' with scale/zero point {pq}, but it was quantized with {have}")
        self.alias[p.output[0]] = (logical, False)

    def float_op(self, p, ins: list[str], attrs: dict) -> None:
        op = p.op_type
        opdef = lookup(op, "")
        if opdef is None or op not in cv.SUPPORTED:
            raise _Refuse("no int8 (edgec.q) equivalent")
        names = []
        int_inputs = []
        for k, i in enumerate(ins):
            if not i:
                names.append("")
            elif i in self.consts:
                names.append(self._annotate_const(i))
            else:
                logical, is_int = self.resolve(i)
                names.append(logical)
                if is_int:
                    int_inputs.append(k)
        passthrough = bool(int_inputs)
        if passthrough:
            if op not in _INT_PASSTHROUGH or int_inputs != [0]:
                raise _Refuse(f"reads the integer tensor '{ins[int_inputs[0]]}' directly (only shape ops and MaxPool can)")
        q_in = self.quant(names[0]) if passthrough else None
        outs = [self.new_out(o, q_in, is_int=passthrough) if o else "" for o in p.output]
        self.add_node(p, op, names, outs, attrs)

    def _annotate_const(self, name: str) -> str:
        if name not in self.tensors:
            self.tensors[name] = self.consts[name]
        return name

    # -- QOperator ------------------------------------------------------------------------------------
    def _opt(self, ins: list[str], k: int) -> str | None:
        return ins[k] if len(ins) > k and ins[k] else None

    def op_QLinearConv(self, idx, p, ins, attrs) -> None:
        xq = self.act_params(ins[1], ins[2], ins[0], p)
        x = self.runtime_in(ins[0], xq)
        w = self.weight(ins[3], ins[4], ins[5], p, axis=0)
        yq = self.act_params(ins[6], ins[7], p.output[0], p)
        inputs = [x, w]
        b = self._opt(ins, 8)
        if b:
            ws = self.tensors[w].quant.scale
            inputs.append(self.bias(b, np.float32(xq[0]) * ws.astype(np.float32)))
        out = self.new_out(p.output[0], yq)
        self.add_node(p, "Conv", inputs, [out], attrs)

    def op_QLinearMatMul(self, idx, p, ins, attrs) -> None:
        aq = self.act_params(ins[1], ins[2], ins[0], p)
        a = self.runtime_in(ins[0], aq)
        if ins[3] not in self.consts:
            raise _Refuse("both operands are run-time tensors (only constant weights are supported)")
        b = self.weight(ins[3], ins[4], ins[5], p, axis=1)
        yq = self.act_params(ins[6], ins[7], p.output[0], p)
        out = self.new_out(p.output[0], yq)
        self.add_node(p, "MatMul", [a, b], [out], {})

    def op_QGemm(self, idx, p, ins, attrs) -> None:
        aq = self.act_params(ins[1], ins[2], ins[0], p)
        a = self.runtime_in(ins[0], aq)
        if ins[3] not in self.consts:
            raise _Refuse("operand B must be a constant")
        trans_b = int(attrs.get("transB", 0))
        b = self.weight(ins[3], ins[4], ins[5], p, axis=0 if trans_b else 1)
        alpha = float(attrs.get("alpha", 1.0))
        beta = float(attrs.get("beta", 1.0)) if "beta" in attrs else 1.0
        inputs = [a, b]
        c = self._opt(ins, 6)
        if c:
            bs = self.tensors[b].quant.scale.astype(np.float32)
            inputs.append(self.bias(c, (np.float32(aq[0]) * bs * np.float32(alpha / beta)).astype(np.float32)))
        if not self._opt(ins, 7):
            raise _Refuse(f"output '{p.output[0]}' is float (QGemm without y_scale): edgec needs integer outputs")
        yq = self.act_params(ins[7], self._opt(ins, 8), p.output[0], p)
        out = self.new_out(p.output[0], yq)
        self.add_node(p, "Gemm", inputs, [out], {"alpha": alpha, "beta": beta, "transA": int(attrs.get("transA", 0)),
                                                 "transB": trans_b})

    def _binary(self, p, ins, op: str) -> None:
        names = []
        for k in (0, 3):
            pq = self.act_params(ins[k + 1], ins[k + 2], ins[k], p)
            if ins[k] in self.consts:
                data = self.consts[ins[k]].data
                name = self._fresh(f"{ins[k]}_c")
                self.tensors[name] = Tensor(name, tuple(data.shape), data.dtype.name, data,
                                            cv.qp(pq[0], pq[1] + (128 if data.dtype == np.uint8 else 0)))
                names.append(name)
            else:
                names.append(self.runtime_in(ins[k], pq))
        yq = self.act_params(ins[6], self._opt(ins, 7), p.output[0], p)
        out = self.new_out(p.output[0], yq)
        self.add_node(p, op, names, [out], {})

    def op_QLinearAdd(self, idx, p, ins, attrs) -> None:
        self._binary(p, ins, "Add")

    def op_QLinearMul(self, idx, p, ins, attrs) -> None:
        self._binary(p, ins, "Mul")

    def _unary(self, p, ins, op: str, attrs: dict) -> None:
        xq = self.act_params(ins[1], ins[2], ins[0], p)
        x = self.runtime_in(ins[0], xq)
        yq = self.act_params(ins[3], self._opt(ins, 4), p.output[0], p)
        out = self.new_out(p.output[0], yq)
        self.add_node(p, op, [x], [out], attrs)

    def op_QLinearGlobalAveragePool(self, idx, p, ins, attrs) -> None:
        if int(attrs.get("channels_last", 0)):
            raise _Refuse("channels_last=1")
        self._unary(p, ins, "GlobalAveragePool", {})

    def op_QLinearAveragePool(self, idx, p, ins, attrs) -> None:
        if int(attrs.get("channels_last", 0)):
            raise _Refuse("channels_last=1")
        self._unary(p, ins, "AveragePool", {k: v for k, v in attrs.items() if k != "channels_last"})

    def op_QLinearSigmoid(self, idx, p, ins, attrs) -> None:
        self._unary(p, ins, "Sigmoid", {})

    def op_QLinearSoftmax(self, idx, p, ins, attrs) -> None:
        xq = self.act_params(ins[1], ins[2], ins[0], p)
        x = self.runtime_in(ins[0], xq)
        yq = self.act_params(ins[3], self._opt(ins, 4), p.output[0], p)
        out = self.new_out(p.output[0], yq)
        opset = int(attrs.get("opset", self.opset))
        node_attrs = {"axis": int(attrs.get("axis", -1 if opset >= 13 else 1))}
        self.add_node(p, "Softmax", [x], [out], node_attrs)
        self.nodes[-1].attrs["_opset"] = opset

    def op_QLinearConcat(self, idx, p, ins, attrs) -> None:
        yq = self.act_params(ins[0], ins[1], p.output[0], p)
        xs = []
        for k in range(2, len(ins), 3):
            pq = self.act_params(ins[k + 1], ins[k + 2], ins[k], p)
            if ins[k] in self.consts:
                raise _Refuse(f"constant input '{ins[k]}'")
            xs.append(self.runtime_in(ins[k], pq))
        out = self.new_out(p.output[0], yq)
        self.add_node(p, "Concat", xs, [out], {"axis": int(attrs["axis"])})

    def _integer_rescale(self, idx: int, p, what: str):
        """MatMulInteger / ConvInteger -> Cast(float) -> Mul(const scale) [-> Add(const bias)]: the
        nodes and constants of that rescale (onnxruntime's QOperator pattern)."""
        g = self.model.graph
        consumers = {}
        for k, n in enumerate(g.node):
            for i in n.input:
                consumers.setdefault(i, []).append((k, n))
        chain, cur = [], p.output[0]
        for want in ("Cast", "Mul", "Add"):
            cs = consumers.get(cur, [])
            if len(cs) != 1 or cs[0][1].op_type != want:
                if want == "Add":
                    break
                raise _Refuse(f"{what} output is not rescaled by a constant (Cast -> Mul): dynamic or float-accumulator "
                              "quantization is not supported")
            k, n = cs[0]
            if want != "Cast":
                other = [i for i in n.input if i != cur]
                if len(other) != 1 or other[0] not in self.consts:
                    if want == "Add":
                        break
                    raise _Refuse(f"{what} is rescaled by a run-time value (dynamic quantization is not supported)")
            chain.append((k, n))
            cur = n.output[0]
        mul = chain[1][1]
        scale = self.consts[[i for i in mul.input if i != chain[0][1].output[0]][0]].data.astype(np.float32).reshape(-1)
        bias = None
        if len(chain) > 2:
            add = chain[2][1]
            bias = self.consts[[i for i in add.input if i != mul.output[0]][0]].data.astype(np.float32)
        for k, _ in chain:
            self.consumed.add(k)
        return chain[-1][1].output[0], scale, bias

    def _integer_op(self, idx, p, ins, op: str) -> None:
        x, xi = self.resolve(ins[0])
        if not xi:
            raise _Refuse(f"input '{ins[0]}' is not an integer tensor")
        xq = self.quant(x)
        if xq is None:
            raise _Refuse(f"input '{ins[0]}' has no quantization parameters")
        zx = self._opt(ins, 2)
        if zx:
            zt = self.const_array(zx, "zero point", p)
            z = int(zt.reshape(-1)[0]) - (128 if zt.dtype == np.uint8 else 0)
            if z != xq[1]:
                raise _Refuse(f"input zero point {z} differs from the tensor's {xq[1]}")
        if ins[1] not in self.consts:
            raise _Refuse("the weights must be a constant")
        out_name, scale, bias = self._integer_rescale(idx, p, op)
        axis = 0 if op == "ConvInteger" else 1
        wdata = self.consts[ins[1]].data
        ws = (scale / np.float32(xq[0])).astype(np.float32)
        zw = self._opt(ins, 3)
        z = (self.const_array(zw, "weight zero point", p).reshape(-1).astype(np.int32) if zw else np.zeros(1, np.int32))
        if ws.size == 1 and z.size > 1:
            ws = np.repeat(ws, z.size)
        if z.size == 1 and ws.size > 1:
            z = np.repeat(z, ws.size)
        w = self._fresh(f"{ins[1]}_w")
        self.tensors[w] = Tensor(w, tuple(wdata.shape), wdata.dtype.name, wdata, QuantParams(ws, z, axis if ws.size > 1 else 0))
        inputs = [x, w]
        if bias is not None:
            b = self._fresh(f"{out_name}_bias")
            self.tensors[b] = Tensor(b, (bias.size,), "float32", bias.reshape(-1))
            inputs.append(b)
        out = self.new_out(out_name, None, is_int=False)
        if op == "ConvInteger":
            self.add_node(p, "Conv", inputs, [out], {k: _attr_value(a) for a in p.attribute for k in [a.name]})
        elif bias is not None:
            self.add_node(p, "Gemm", inputs, [out], {})
        else:
            self.add_node(p, "MatMul", inputs, [out], {})

    def op_MatMulInteger(self, idx, p, ins, attrs) -> None:
        self._integer_op(idx, p, ins, "MatMulInteger")

    def op_ConvInteger(self, idx, p, ins, attrs) -> None:
        self._integer_op(idx, p, ins, "ConvInteger")


def load_quantized_annotated(path: str | Path, input_shapes: dict | None = None) -> tuple[Graph, dict]:
    """The annotated float graph (NCHW ONNX ops + int8 parameters) of a quantized ONNX model."""
    path = Path(path)
    model = _read_model(path)
    opset = _opset(model)
    if opset < MIN_OPSET or opset > MAX_OPSET:
        raise ModelError(f"{path.name}: opset {opset} is outside the supported range {MIN_OPSET}..{MAX_OPSET}")
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    imp = _Importer(model, opset, input_shapes or {})
    ann = imp.run(path.stem)
    info = {"format": "QOperator" if "QOperator" in imp.info["format"] else "QDQ",
            "activation_dtypes": sorted(imp.info["activation_dtypes"])}
    return ann, info


def load_quantized_onnx(path: str | Path, input_shapes: dict | None = None) -> Graph:
    """Load a QDQ / QOperator ONNX model as a graph of integer edgec.q ops (NHWC)."""
    ann, info = load_quantized_annotated(path, input_shapes)
    g = cv.to_int8(ann)
    g.quantization = {"scheme": f"imported quantized ONNX ({info['format']})",  # type: ignore[attr-defined]
                      "activation_dtypes": info["activation_dtypes"],
                      "uint8_shifted_to_int8": "uint8" in info["activation_dtypes"]}
    return g


__all__ = ["is_quantized_onnx", "load_quantized_onnx", "load_quantized_annotated"]
