"""ONNX -> edgec IR.

load, check, inline model-local functions, fix dynamic input dims from
--input-shape, propagate shapes with edgec's own shape functions, and fold
constant subgraphs (the Shape/Gather/Concat/Reshape chains exporters write).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
import onnx.inliner
from onnx import helper, numpy_helper

from edgec.errors import InputFileError, ModelError, UnsupportedOpsError
from edgec.ir import Graph, Node, Tensor
from edgec.ops.registry import lookup

MIN_OPSET = 11
MAX_OPSET = onnx.defs.onnx_opset_version()
# Folding a constant larger than this into flash would bloat the image: refuse.
_FOLD_LIMIT_ELEMS = 1 << 22


def parse_input_shapes(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """`name=1x3x96x96` (repeatable) -> {name: (1, 3, 96, 96)}."""
    out: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        m = re.fullmatch(r"\s*([^=]+)=(\d+(?:[x,]\d+)*)\s*", spec)
        if not m:
            raise ModelError(f"bad --input-shape '{spec}': expected name=1x3x96x96")
        out[m.group(1)] = tuple(int(d) for d in re.split(r"[x,]", m.group(2)))
    return out


def _read_model(path: Path) -> onnx.ModelProto:
    if not path.exists():
        raise InputFileError(f"model file not found: {path}")
    if not path.is_file():
        raise InputFileError(f"not a file: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError, RuntimeWarning, ...
        raise InputFileError(f"{path} is not a valid ONNX model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'parse failed'})") from None
    if not model.graph.node and not model.graph.output:
        raise InputFileError(f"{path} is not a valid ONNX model (no graph)")
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except (OSError, onnx.checker.ValidationError) as e:
        msg = " ".join(str(e).split())
        raise InputFileError(f"{path.name}: external data file missing or unreadable ({msg})") from None
    return model


def _opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return MAX_OPSET


def _attr_value(a: onnx.AttributeProto) -> Any:
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode() for x in v]
    return v


def _np_dtype(elem_type: int) -> str:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray:
    a = node.attribute[0]
    kind = a.name
    v = _attr_value(a)
    if kind == "value":
        return np.asarray(v)
    if kind == "value_float":
        return np.asarray(v, np.float32)
    if kind == "value_floats":
        return np.asarray(v, np.float32)
    if kind == "value_int":
        return np.asarray(v, np.int64)
    if kind == "value_ints":
        return np.asarray(v, np.int64)
    raise ModelError(f"Constant node '{node.name}' uses unsupported attribute '{kind}'")


def _fold_with_onnx_reference(proto: onnx.NodeProto, opset: int, values: list[np.ndarray | None]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    names = [n for n in proto.input]
    feeds = {n: v for n, v in zip(names, values) if n}
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for n, v in feeds.items()]
    outs = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in proto.output if o]
    g = helper.make_graph([proto], "fold", ins, outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    res = ReferenceEvaluator(m).run(None, feeds)
    return [np.asarray(r) for r in res]


def load_onnx(path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None, check: bool = True) -> Graph:
    path = Path(path)
    model = _read_model(path)
    opset = _opset(model)
    if opset < MIN_OPSET or opset > MAX_OPSET:
        raise ModelError(f"{path.name}: opset {opset} is outside the supported range {MIN_OPSET}..{MAX_OPSET}")
    if check:
        try:
            onnx.checker.check_model(model, full_check=False)
        except onnx.checker.ValidationError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid model"
            raise ModelError(f"{path.name} fails the ONNX checker: {first}") from None
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    return _to_graph(model, opset, path.stem, input_shapes or {})


def _to_graph(model: onnx.ModelProto, opset: int, name: str, input_shapes: dict[str, tuple[int, ...]]) -> Graph:
    g = model.graph
    tensors: dict[str, Tensor] = {}
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        tensors[init.name] = Tensor(init.name, tuple(arr.shape), arr.dtype.name, arr)

    unknown = set(input_shapes) - {i.name for i in g.input}
    if unknown:
        raise ModelError(f"--input-shape names unknown input(s) {sorted(unknown)}; inputs are {[i.name for i in g.input if i.name not in tensors]}")
    inputs: list[str] = []
    for vi in g.input:
        if vi.name in tensors:  # an initializer listed as input (old exporters)
            continue
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise ModelError(f"input '{vi.name}' is not a tensor")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if vi.name in input_shapes:
            shape = input_shapes[vi.name]
            if any(d <= 0 for d in shape):
                raise ModelError(f"--input-shape {vi.name}: dimensions must be positive, got {'x'.join(map(str, shape))}")
            if len(shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, shape)):
                raise ModelError(f"--input-shape {vi.name}={'x'.join(map(str, shape))} does not match the model's {['?' if d is None else d for d in dims]}")
        elif any(d is None or d <= 0 for d in dims) or not tt.HasField("shape"):
            shown = "x".join("?" if (d is None or d <= 0) else str(d) for d in dims) or "unknown"
            raise ModelError(f"input '{vi.name}' has a dynamic shape ({shown}); give it with --input-shape {vi.name}=1x...")
        else:
            shape = tuple(int(d) for d in dims)
        tensors[vi.name] = Tensor(vi.name, tuple(shape), _np_dtype(tt.elem_type))
        inputs.append(vi.name)

    nodes: list[Node] = []
    unsupported: list[tuple[str, str, str, int, str]] = []
    unknown: set[str] = set()
    for i, p in enumerate(g.node):
        nname = p.name or f"{p.op_type}_{i}"
        if p.op_type == "Constant" and p.domain in ("", "ai.onnx"):
            arr = _constant_node_value(p)
            tensors[p.output[0]] = Tensor(p.output[0], tuple(arr.shape), arr.dtype.name, arr)
            continue
        attrs = {a.name: _attr_value(a) for a in p.attribute}
        attrs["_opset"] = opset
        node = Node(nname, p.op_type, tuple(p.input), tuple(p.output), attrs, p.domain if p.domain != "ai.onnx" else "")
        opdef = lookup(node.op, node.domain)
        supported_op = opdef is not None and (opdef.relax is not None or opdef.alias)
        if any(x in unknown for x in node.inputs if x):
            # downstream of an unsupported node: shapes are unknown, keep scanning
            # so that every unsupported node is reported at once
            if not supported_op:
                unsupported.append((nname, p.op_type, p.domain, opset, "no edgec kernel"))
            unknown.update(o for o in node.outputs if o)
            continue
        undefined = [x for x in node.inputs if x and x not in tensors]
        if undefined:
            raise ModelError(f"node '{nname}' reads undefined tensor(s) {undefined}")
        ins = [tensors[x] if x else None for x in node.inputs]
        all_const = all(t is None or t.is_const for t in ins) and any(t is not None for t in ins)
        if opdef is not None and opdef.shape_only:
            ins = [Tensor(t.name, t.shape, t.dtype, np.empty(t.shape, np.uint8)) if t is not None else None for t in ins]
            all_const = True
        if all_const:
            try:
                vals = _fold(node, p, opset, ins, opdef)
            except Exception as e:  # noqa: BLE001
                raise ModelError(f"node '{nname}' ({p.op_type}): constant folding failed: {e}") from None
            for o, v in zip(node.outputs, vals):
                if o:
                    if v.size > _FOLD_LIMIT_ELEMS:
                        raise ModelError(f"node '{nname}' folds to a {v.shape} constant, too large")
                    tensors[o] = Tensor(o, tuple(v.shape), v.dtype.name, v)
            continue
        if not supported_op:
            unsupported.append((nname, p.op_type, p.domain or "", opset, "no edgec kernel"))
            unknown.update(o for o in node.outputs if o)
            continue
        try:
            why = next((f"input {k} ('{node.inputs[k]}') must be a compile-time constant"
                        for k in opdef.static_inputs if k < len(ins) and ins[k] is not None and not ins[k].is_const), None)
            if why is None and opdef.check:
                why = opdef.check(node, ins)
            if why is None:
                why = _runtime_dtype_problem(node, opdef, ins)
            if why is None:
                out_specs = opdef.shape(node, ins)
        except ModelError:
            raise
        except Exception as e:  # noqa: BLE001 - a shape function choking on odd attributes
            why = f"cannot infer its output shape ({type(e).__name__}: {e})"
        if why:
            unsupported.append((nname, p.op_type, p.domain or "", opset, why))
            unknown.update(o for o in node.outputs if o)
            continue
        for o, (shape, dtype) in zip(node.outputs, out_specs):
            if o:
                tensors[o] = Tensor(o, tuple(int(d) for d in shape), dtype)
        nodes.append(node)

    if unsupported:
        raise UnsupportedOpsError(unsupported)
    for kind, names in (("input", inputs), ("output", [o.name for o in g.output])):
        for n in names:
            if tensors[n].dtype != "float32":
                raise ModelError(f"graph {kind} '{n}' has dtype {tensors[n].dtype}: the float C API takes float32 inputs and outputs only")
    outputs = [o.name for o in g.output]
    for o in outputs:
        if o not in tensors and o not in unknown:
            raise ModelError(f"graph output '{o}' is never produced")
    graph = Graph(name=_c_ident(name), tensors=tensors, nodes=nodes, inputs=inputs, outputs=outputs, opset=opset)
    return graph.with_nodes(graph.live_nodes())


def _runtime_dtype_problem(node: Node, opdef, ins) -> str | None:
    for k, t in enumerate(ins):
        if t is None or k in opdef.static_inputs:
            continue
        if t.dtype != "float32":
            return f"runtime tensor '{t.name}' has dtype {t.dtype} (float32 only for now)"
    return None


def _fold(node: Node, proto: onnx.NodeProto, opset: int, ins, opdef) -> list[np.ndarray]:
    values = [t.data if t is not None else None for t in ins]
    if opdef is not None:
        try:
            return [np.asarray(v) for v in opdef.reference(node, values)]
        except Exception:  # noqa: BLE001 - fall back to the ONNX reference evaluator
            pass
    return _fold_with_onnx_reference(proto, opset, values)


def _c_ident(name: str) -> str:
    s = re.sub(r"\W", "_", name).strip("_").lower() or "model"
    return s if not s[0].isdigit() else "m_" + s
