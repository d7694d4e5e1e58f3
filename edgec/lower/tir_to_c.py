"""Lower a scheduled PrimFunc to a plain C function with raw-pointer arguments.

TVM's stock C build wraps every function in the packed tvm-ffi calling
convention. Here the s_tir/tirx lowering passes are run by hand up to (not
including) MakePackedAPI / LowerTVMBuiltin, each buffer parameter is turned
into a raw pointer, and `target.build.c` prints the function; the TVM headers
and the generated FFI entry point are then dropped, leaving freestanding C99.
"""

from __future__ import annotations

import re

import tvm
import tvm_ffi
from tvm import ir, tirx
from tvm.s_tir import transform as st
from tvm.tirx import transform as tt

_TARGET = tvm.target.Target({"kind": "c"})


def _lowering_passes() -> list:
    return [
        tt.BindTarget(_TARGET),
        st.CanonicalizeLoop(),
        st.LowerInitBlock(),
        st.PlanAndUpdateBufferAllocationLocation(),
        st.ConvertBlocksToOpaque(),
        st.CompactBufferAllocation(),
        st.LowerMatchBuffer(),
        st.StmtSimplify(),
        st.LowerOpaqueBlock(),
        tt.FlattenBuffer(),
        tt.NarrowDataType(32),
        st.LoopPartition(),
        tt.VectorizeLoop(False),
        tt.StorageRewrite(),
        tt.UnrollLoop(),
        st.RenormalizeSplitPattern(),
        tt.StmtSimplify(),
        tt.RemoveNoOp(),
        st.RewriteUnsafeSelect(),
        tt.CommonSubexprElim(),
        tt.VerifyMemory(),
    ]


def _buffer_params_to_pointers(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Replace every buffer parameter by a typed pointer (`float *x`)."""
    ptrs: list[tuple[object, tirx.Var]] = []
    for p in func.params:
        ptrs.append((p, tirx.Var(p.name, ir.PointerType(ir.PrimType(str(p.dtype))))))

    def rewrite(call):
        op = getattr(call, "op", None)
        if isinstance(op, ir.Op) and op.name.endswith("buffer_data") and len(call.args) == 1:
            for buf, ptr in ptrs:
                if call.args[0].same_as(buf):
                    return ptr
        return call

    body = tvm_ffi.structural_map(func.body, (ir.expr.Call, rewrite))
    return tirx.PrimFunc([p for _, p in ptrs], body, func.ret_type, func.attrs)


def stack_allocations(func: tirx.PrimFunc) -> int:
    """Bytes of local buffers left in a lowered function (they become stack arrays)."""
    total = 0
    for m in re.finditer(r"T\.alloc_buffer\(\(([^)]*)\),?\s*(\"(\w+)\")?", func.script()):
        dims = [int(x) for x in re.findall(r"\d+", m.group(1))]
        n = 1
        for d in dims:
            n *= d
        dtype = m.group(3) or "float32"
        total += n * (int(re.sub(r"\D", "", dtype) or 32) // 8)
    return total


def lower_to_c(func: tirx.PrimFunc, symbol: str, n_inputs: int) -> tuple[str, int, list[int]]:
    """Returns (C function definition, bytes of local arrays, argument order).

    FuseTIR orders the fused function's parameters by first use, not by the
    Relax signature; the argument order maps each C parameter back to the
    Relax parameter `in<k>` (k) or the output (-1)."""
    mod = tvm.IRModule({symbol: func.with_attr("global_symbol", symbol)})
    with tvm.transform.PassContext(opt_level=3, config={"tirx.disable_vectorize": True}):
        mod = tvm.ir.transform.Sequential(_lowering_passes())(mod)
        lowered = mod[symbol]
        local_bytes = stack_allocations(lowered)
        mod = tvm.IRModule({symbol: _buffer_params_to_pointers(lowered)})
        mod = tt.LowerIntrin()(mod)
    order = [int(p.name[2:]) if re.fullmatch(r"in\d+", p.name) else -1 for p in func.params]
    if sorted(order) != [-1] + list(range(n_inputs)):
        raise RuntimeError(f"{symbol}: unexpected kernel parameters {[p.name for p in func.params]}")
    src = tvm.get_global_func("target.build.c")(mod, _TARGET).inspect_source()
    src = _exact_float_literals(src, mod[symbol])
    return _extract_function(src, symbol, order), local_bytes, order


def _exact_float_literals(src: str, func: tirx.PrimFunc) -> str:
    """TVM prints float32 constants with 7 significant digits (`1.666667e-01f`
    for 1/6), which do not round-trip. Replace each by the exact C99 hex float
    of the constant it came from (when that text names a single constant)."""
    values: dict[str, set[float]] = {}

    def visit(imm):
        if str(imm.ty) == "float32":
            v = abs(float(imm.value))
            values.setdefault(f"{v:.6e}", set()).add(v)
        return tvm_ffi.WalkResult.ADVANCE

    tvm_ffi.structural_walk(func.body, (tirx.FloatImm, visit))

    def repl(m: re.Match) -> str:
        vs = values.get(m.group(1))
        if not vs or len(vs) != 1:
            return m.group(0)
        v = next(iter(vs))
        if v != v or v in (float("inf"),):
            return m.group(0)
        return f"{v.hex()}f" if float(f"{v:.6e}") != v else m.group(0)

    return re.sub(r"(?<![\w.])(\d\.\d{6}e[+-]\d{2})f", repl, src)


def _extract_function(src: str, symbol: str, order: list[int]) -> str:
    """Cut the definition of `symbol` out of TVM's C output and tidy it."""
    m = re.search(rf"^TVM_DLL void {re.escape(symbol)}\((.*)\) {{$", src, re.M)
    if m is None:
        raise RuntimeError(f"TVM output has no definition of {symbol}")
    body_start = m.end()
    end = src.index("\n}\n", body_start)
    body = src[body_start : end + 2]
    params = [p.strip() for p in m.group(1).split(",")]
    # Inputs are never written: mark them const so flash-resident weights type-check.
    params = [("const " + p if k >= 0 else p) for k, p in zip(order, params)]
    sig = f"void {symbol}({', '.join(params)})"
    return f"{sig} {{{body}"
