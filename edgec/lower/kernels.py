"""Per layer: pick and build a kernel. Identical layers share one kernel."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgec.errors import ModelError
from edgec.ir import Graph, Node, Tensor
from edgec.lower.ckernel import CCall, CKernelCtx, StaticDecl
from edgec.lower.relax_emit import build_primfunc, kernel_args
from edgec.lower.schedule import mcu_schedule
from edgec.lower.tir_to_c import lower_to_c
from edgec.ops.registry import lookup


@dataclass
class Layer:
    index: int
    name: str
    op: str  # display name, e.g. "Conv+Relu"
    kind: str  # "tvm" | "alias" | "copy"
    kernel: str | None  # C symbol
    args: list[str]  # kernel argument tensors: inputs, then the output
    output: str
    out_shape: tuple[int, ...]
    macs: int
    params: int  # constant elements read
    weight_bytes: int
    activation_bytes: int  # output bytes
    local_bytes: int = 0  # local arrays left in the kernel (stack)
    reason: str = ""  # why this kernel
    ccall: CCall | None = None  # kind == "runtime_c": the call and its static parameters
    statics: list[StaticDecl] = field(default_factory=list)
    scratch_bytes: int = 0


@dataclass
class KernelSet:
    sources: dict[str, str] = field(default_factory=dict)  # symbol -> C definition
    by_key: dict[str, str] = field(default_factory=dict)
    info: dict[str, tuple[int, list[int]]] = field(default_factory=dict)  # symbol -> (local bytes, arg order)


def _key(node: Node, ins: list[Tensor | None], outs: list[Tensor], static: tuple[int, ...]) -> str:
    h = hashlib.sha256()

    def feed(n: Node, tensors):
        h.update(f"{n.domain}::{n.op}".encode())
        for k in sorted(n.attrs):
            if k.startswith("_") and k != "_opset":
                continue
            v = n.attrs[k]
            h.update(f"{k}={np.asarray(v).tobytes() if isinstance(v, np.ndarray) else v!r};".encode())
        for i, t in enumerate(tensors):
            if t is None:
                h.update(b"none;")
                continue
            h.update(f"{t.shape}{t.dtype};".encode())
            if i in static and t.data is not None:
                h.update(t.data.tobytes())

    feed(node, ins)
    for e in node.attrs.get("_epilogue", ()):
        feed(e, [])
    h.update(f"{outs[0].shape}{outs[0].dtype}".encode())
    return h.hexdigest()


# The cost model, per MAC, from measurements on the emulated Cortex-M7 (docs/kernels.md,
# bench/int8.py): runtime_c's hand-tuned int8 kernels beat the TVM-generated ones, which
# have no SIMD (SMLAD) and keep the padding test in the inner loop.
_INSTR_PER_MAC = {("runtime_c", True): 1.7, ("runtime_c", False): 6.0, ("tvm", True): 9.0, ("tvm", False): 9.0}


def _cost_note(dsp: bool) -> str:
    return (f"est. {_INSTR_PER_MAC[('runtime_c', dsp)]:g} vs {_INSTR_PER_MAC[('tvm', dsp)]:g} instructions/MAC"
            f"{' with DSP' if dsp else ''}")


def _const_tables(g: Graph, n: Node, d, ins, prefix: str) -> list[Tensor]:
    """The op's extra constant tables as graph constants (shared by content)."""
    if d.relax_consts is None:
        return []
    out = []
    for arr in d.relax_consts(n, ins):
        arr = np.ascontiguousarray(arr)
        name = f"{prefix}_tab_{hashlib.sha256(arr.dtype.str.encode() + arr.tobytes()).hexdigest()[:12]}"
        if name not in g.tensors:
            g.tensors[name] = Tensor(name, tuple(arr.shape), arr.dtype.name, arr)
        out.append(g.tensors[name])
    return out


def _epilogue_tensors(g: Graph, act: Node) -> list[Tensor | None]:
    return [None] + [g.tensor(i) if i else None for i in act.inputs[1:]]


def build_layers(g: Graph, prefix: str, progress: Callable[[int, int, str], None] | None = None,
                 dsp: bool = False, prefer: str = "auto") -> tuple[list[Layer], KernelSet]:
    """`prefer`: which implementation an op with both gets: "auto" (the cost
    model: runtime_c's hand-tuned kernels), "runtime_c" or "tvm"."""
    ks = KernelSet()
    layers: list[Layer] = []
    for idx, n in enumerate(g.nodes):
        d = lookup(n.op, n.domain)
        ins = [g.tensor(i) if i else None for i in n.inputs]
        outs = [g.tensor(o) for o in n.outputs if o]
        epi = list(n.attrs.get("_epilogue", ()))
        display = "+".join([n.op] + [e.op for e in epi])
        # weights: constants the kernel reads from flash (not shapes/axes read at compile time)
        weights = [] if d.alias else [t for i, t in enumerate(ins) if t is not None and t.is_const and i not in d.static_inputs]
        macs = d.macs(n, ins, outs) + sum(lookup(e.op).macs(e, [outs[0]], outs) for e in epi)
        common = dict(
            index=idx, name=n.name, op=display, output=outs[0].name, out_shape=outs[0].shape, macs=int(macs),
            params=sum(t.size for t in weights if t is not None),
            weight_bytes=sum(t.nbytes for t in weights if t is not None),
            activation_bytes=outs[0].nbytes,
        )
        if d.alias:
            layers.append(Layer(kind="alias", kernel=None, args=[n.inputs[0], outs[0].name], reason="same bytes, new shape: no code", **common))
            continue
        if n.domain == "edgec" and n.op == "Copy":
            layers.append(Layer(kind="copy", kernel=None, args=[n.inputs[0], outs[0].name], reason="memcpy", **common))
            continue
        use_c = d.c_kernel is not None and (prefer != "tvm" or d.relax is None)
        call = None
        if use_c:
            ctx = CKernelCtx(f"{prefix}_L{idx}", ins, outs, dsp=dsp)
            call = d.c_kernel(ctx, n)  # None: this instance is outside the hand-written kernel's cases
            if call is None and d.relax is None:
                raise ModelError(f"node '{n.name}' ({n.op}): no kernel handles this case")
        if call is not None:
            why = call.reason
            if d.relax is not None:
                why += f"; chosen over the TVM kernel ({_cost_note(dsp)})"
            layers.append(Layer(kind="runtime_c", kernel=call.function, args=list(n.inputs) + [outs[0].name],
                                reason=f"runtime_c: {why}", ccall=call, statics=ctx.statics,
                                scratch_bytes=call.scratch_bytes, **common))
            continue
        if d.relax is None:
            raise ModelError(f"node '{n.name}' ({n.op}) has no kernel")
        arg_idx = kernel_args(n, d, ins)
        consts = _const_tables(g, n, d, ins, prefix)
        key = _key(n, ins, outs, d.static_inputs) + "".join(t.name for t in consts)
        sym = ks.by_key.get(key)
        if sym is None:
            sym = f"{prefix}_k{len(ks.sources)}_{n.op.lower()}"
            if progress:
                progress(idx, len(g.nodes), f"{display} {n.name}")
            epi_in = [(e, [outs[0]] + _epilogue_tensors(g, e)[1:]) for e in epi]
            func = build_primfunc(n, ins, outs, epi_in, consts)
            src, local, order = lower_to_c(mcu_schedule(func), sym, len(arg_idx) + len(consts))
            ks.sources[sym] = src
            ks.by_key[key] = sym
            ks.info[sym] = (local, order)
        local, order = ks.info[sym]
        # C parameter order -> tensors; the output is always the last parameter
        arg_names = [n.inputs[i] for i in arg_idx] + [t.name for t in consts]
        args = [arg_names[k] for k in order if k >= 0] + [outs[0].name]
        assert order[-1] == -1, sym
        layers.append(Layer(kind="tvm", kernel=sym, args=args, local_bytes=local,
                            reason="generated by TVM (Relax -> TIR -> C)", **common))
    return layers, ks
