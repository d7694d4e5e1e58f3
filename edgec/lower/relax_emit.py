"""Build one Relax function per edgec node and turn it into one TIR PrimFunc.

The node's runtime inputs (activations and weights) become function
parameters, so weights stay `const` arrays in flash passed by pointer instead
of being baked into the kernel. Epilogue activations fused into the node by
`passes/fuse_activation.py` are emitted after the op, and TVM's FuseOps /
FuseTIR merges them into a single kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import tvm
from tvm import relax, tirx

from edgec.errors import ModelError
from edgec.ir import Node, Tensor
from edgec.ops.registry import OpDef, lookup

@tvm.transform.module_pass(opt_level=0, name="EdgecOneKernelPerNode")
def _one_group(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    """Label every PrimFunc element-wise so that FuseOps puts the node's whole
    Relax function (op, bias reshape/add, epilogue) into one group. FuseTIR's
    merge is correct whatever the labels; they only steer the grouping, and a
    node is exactly the unit edgec wants as one kernel."""
    out = tvm.IRModule()
    for gv, f in mod.functions.items():
        if isinstance(f, tirx.PrimFunc):
            f = f.with_attr("op_pattern", 0)
        out[gv] = f
    return out


_FUSE = tvm.ir.transform.Sequential(
    [
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        _one_group,
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        relax.transform.DeadCodeElimination(),
    ]
)


@dataclass
class EmitCtx:
    """What an op's Relax emitter sees: the builder and the node's tensors."""

    bb: relax.BlockBuilder
    inputs: Sequence[Tensor | None]
    outputs: Sequence[Tensor]
    consts: Sequence[Any] = ()  # Relax params of the op's `relax_consts` tables, in order

    def emit(self, expr: Any) -> Any:
        return self.bb.emit(expr)

    def static(self, i: int) -> np.ndarray | None:
        """Compile-time value of input i (None when the optional input is absent)."""
        t = self.inputs[i] if i < len(self.inputs) else None
        if t is None:
            return None
        if t.data is None:
            raise ModelError(f"input '{t.name}' must be a constant")
        return t.data


def _bind(bb: relax.BlockBuilder, expr: Any) -> Any:
    """Emit unless the emitter already did (a var-to-var binding blocks fusion)."""
    return expr if isinstance(expr, relax.Var) else bb.emit(expr)


def kernel_args(node: Node, opdef: OpDef, ins: Sequence[Tensor | None]) -> list[int]:
    """Indices of the node inputs that are passed to the kernel at run time."""
    return [i for i, t in enumerate(ins) if t is not None and i not in opdef.static_inputs]


def _struct(t: Tensor) -> relax.TensorType:
    return relax.TensorType(shape=tuple(int(d) for d in t.shape), dtype=t.dtype)


def build_primfunc(
    node: Node,
    ins: Sequence[Tensor | None],
    outs: Sequence[Tensor],
    epilogue: Sequence[tuple[Node, Sequence[Tensor | None]]] = (),
    consts: Sequence[Tensor] = (),
) -> tirx.PrimFunc:
    """Relax -> (LegalizeOps, FuseOps, FuseTIR) -> one PrimFunc for the node.

    `consts`: the op's extra constant tables (`relax_consts`), passed after the
    node's runtime inputs as parameters in<n>, in<n+1>, ..."""
    opdef = lookup(node.op, node.domain)
    assert opdef is not None and opdef.relax is not None, node.op
    bb = relax.BlockBuilder()
    arg_idx = kernel_args(node, opdef, ins)
    params = [relax.Var(f"in{k}", _struct(ins[i])) for k, i in enumerate(arg_idx)]
    const_params = [relax.Var(f"in{len(params) + j}", _struct(t)) for j, t in enumerate(consts)]
    args: list[Any] = [None] * len(ins)
    for p, i in zip(params, arg_idx):
        args[i] = p
    with bb.function("main", params + const_params):
        with bb.dataflow():
            ctx = EmitCtx(bb, ins, outs, const_params)
            y = _bind(bb, opdef.relax(ctx, node, args))
            for act, act_ins in epilogue:
                act_def = lookup(act.op, act.domain)
                y = _bind(bb, act_def.relax(EmitCtx(bb, act_ins, outs), act, [y]))
            if y.ty.dtype != outs[0].dtype:
                y = bb.emit(relax.op.astype(y, outs[0].dtype))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    mod = _FUSE(bb.get())
    prims = [f for _, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)]
    if len(prims) != 1:
        raise ModelError(
            f"node '{node.name}' ({node.op}) lowered to {len(prims)} TVM kernels ({[gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)]}); edgec expects one"
        )
    got = tuple(int(d) for d in mod["main"].ret_ty.shape) if hasattr(mod["main"], "ret_ty") else None
    if got is not None and got != tuple(outs[0].shape):
        raise ModelError(
            f"node '{node.name}' ({node.op}): TVM computed output shape {got}, edgec expected {outs[0].shape}"
        )
    return prims[0]
