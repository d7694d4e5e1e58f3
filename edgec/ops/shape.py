"""Shape ops. Reshape-like ops are aliases (no kernel, no copy); Transpose and
Concat move data."""

from __future__ import annotations

import numpy as np
from tvm.relax import op as R

from edgec.errors import ModelError
from edgec.ops.registry import OpDef, attr, register


def _reshape_target(node, in_shape, shape_arr):
    shape = [int(v) for v in np.asarray(shape_arr).reshape(-1)]
    allowzero = int(attr(node, "allowzero", 0))
    out = []
    for i, v in enumerate(shape):
        out.append(in_shape[i] if (v == 0 and not allowzero) else v)
    if -1 in out:
        known = int(np.prod([v for v in out if v != -1]))
        total = int(np.prod(in_shape))
        if known == 0 or total % known:
            raise ModelError(f"node '{node.name}': cannot reshape {tuple(in_shape)} to {tuple(shape)}")
        out[out.index(-1)] = total // known
    if int(np.prod(out)) != int(np.prod(in_shape)):
        raise ModelError(f"node '{node.name}': cannot reshape {tuple(in_shape)} to {tuple(shape)}")
    return tuple(out)


def _static(ins, i, node, what):
    t = ins[i] if i < len(ins) else None
    if t is None:
        return None
    if t.data is None:
        raise ModelError(f"node '{node.name}': {what} must be a constant")
    return t.data


def _reshape_shape(node, ins):
    shape = _static(ins, 1, node, "the target shape") if len(ins) > 1 else attr(node, "shape")
    return [(_reshape_target(node, ins[0].shape, shape), ins[0].dtype)]


def _reshape_ref(node, xs):
    shape = xs[1] if len(xs) > 1 else attr(node, "shape")
    return [xs[0].reshape(_reshape_target(node, xs[0].shape, shape))]


def _flatten_out(node, s):
    # axis is in [-r, r]; a negative axis counts from the back (r + axis)
    ax = int(attr(node, "axis", 1))
    if ax < 0:
        ax += len(s)
    if not 0 <= ax <= len(s):
        raise ModelError(f"node '{node.name}' (Flatten): axis {attr(node, 'axis', 1)} is out of range for rank {len(s)}")
    return (int(np.prod(s[:ax], dtype=np.int64)), int(np.prod(s[ax:], dtype=np.int64)))


def _squeeze_axes(node, shape, axes_arr):
    axes = attr(node, "axes", None) if axes_arr is None else [int(a) for a in np.asarray(axes_arr).reshape(-1)]
    if axes is None:
        return [i for i, d in enumerate(shape) if d == 1]
    return sorted(int(a) % len(shape) for a in axes)


def _squeeze_out(node, shape, axes_arr):
    axes = _squeeze_axes(node, shape, axes_arr)
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _unsqueeze_out(node, shape, axes_arr):
    axes = attr(node, "axes", None) if axes_arr is None else [int(a) for a in np.asarray(axes_arr).reshape(-1)]
    rank = len(shape) + len(axes)
    axes = sorted(int(a) % rank for a in axes)
    out, it = [], iter(shape)
    for i in range(rank):
        out.append(1 if i in axes else next(it))
    return tuple(out)


def _alias(name, out_fn, static_inputs=()):
    """An op whose output is its input's bytes under another shape."""

    def shape(node, ins):
        arg = _static(ins, 1, node, "axes") if static_inputs and len(ins) > 1 else None
        return [(out_fn(node, ins[0].shape, arg), ins[0].dtype)]

    def ref(node, xs):
        arg = xs[1] if static_inputs and len(xs) > 1 else None
        return [xs[0].reshape(out_fn(node, xs[0].shape, arg))]

    return OpDef(name, shape, ref, alias=True, static_inputs=static_inputs)


def _identity_like(name):
    def shape(node, ins):
        return [(ins[0].shape, ins[0].dtype)]

    def ref(node, xs):
        if name == "Dropout" and len(xs) > 2 and xs[2] is not None and bool(np.asarray(xs[2]).reshape(-1)[0]):
            ratio = float(np.asarray(xs[1]).reshape(-1)[0]) if len(xs) > 1 and xs[1] is not None else 0.5
            if ratio != 0.0:
                raise NotImplementedError("random dropout (training_mode=1)")
        return [xs[0].copy()]

    def check(node, ins):
        if name == "Dropout":
            if len(node.outputs) > 1 and node.outputs[1]:
                return "the mask output is not supported"
            training = ins[2] if len(ins) > 2 else None
            if training is not None:
                if training.data is None:
                    return "training_mode must be a compile-time constant"
                ratio = ins[1] if len(ins) > 1 else None
                if ratio is not None and ratio.data is None:
                    return "ratio must be a compile-time constant"
                r = float(np.asarray(ratio.data).reshape(-1)[0]) if ratio is not None else 0.5
                if bool(np.asarray(training.data).reshape(-1)[0]) and r != 0.0:
                    return "training_mode=1 (random dropout) is not supported"
        return None

    return OpDef(name, shape, ref, alias=True, static_inputs=(1, 2) if name == "Dropout" else (), check=check)


# ---- Transpose / Concat --------------------------------------------------------

def _perm(node, rank):
    return [int(p) for p in attr(node, "perm", list(range(rank))[::-1])]


def _transpose_shape(node, ins):
    s = ins[0].shape
    return [(tuple(s[p] for p in _perm(node, len(s))), ins[0].dtype)]


def _transpose_ref(node, xs):
    return [np.transpose(xs[0], _perm(node, xs[0].ndim))]


def _transpose_emit(ctx, node, args):
    return R.permute_dims(args[0], _perm(node, len(ctx.inputs[0].shape)))


def _concat_shape(node, ins):
    ax = int(attr(node, "axis")) % len(ins[0].shape)
    out = list(ins[0].shape)
    out[ax] = sum(t.shape[ax] for t in ins)
    return [(tuple(out), ins[0].dtype)]


def _concat_ref(node, xs):
    return [np.concatenate(xs, axis=int(attr(node, "axis")))]


def _concat_emit(ctx, node, args):
    ax = int(attr(node, "axis")) % len(ctx.inputs[0].shape)
    return R.concat([a for a in args if a is not None], axis=ax)


def _copy_cost(node, ins, outs):
    return 0


# Shape and Size read only the static shape of their input: always folded.
def _shape_of(node, xs):
    s = xs[0].shape
    start, end = int(attr(node, "start", 0)), attr(node, "end", None)
    return [np.asarray(s[slice(start, None if end is None else int(end))], np.int64)]


def _shape_shape(node, ins):
    return [(_shape_of(node, [np.empty(ins[0].shape, np.uint8)])[0].shape, "int64")]


register(
    OpDef("Shape", _shape_shape, _shape_of, shape_only=True),
    OpDef("Size", lambda n, ins: [((), "int64")], lambda n, xs: [np.asarray(xs[0].size, np.int64)], shape_only=True),
    OpDef("Reshape", _reshape_shape, _reshape_ref, alias=True, static_inputs=(1,)),
    _alias("Flatten", lambda n, s, a: _flatten_out(n, s)),
    _alias("Squeeze", _squeeze_out, static_inputs=(1,)),
    _alias("Unsqueeze", _unsqueeze_out, static_inputs=(1,)),
    _identity_like("Identity"),
    _identity_like("Dropout"),
    OpDef("Transpose", _transpose_shape, _transpose_ref, _transpose_emit, _copy_cost),
    OpDef("Concat", _concat_shape, _concat_ref, _concat_emit, _copy_cost),
)


# ---- edgec-internal -------------------------------------------------------------
# Copy: inserted by passes/insert_output_copies.py; lowered to memcpy by codegen.
register(
    OpDef(
        "Copy",
        lambda n, ins: [(ins[0].shape, ins[0].dtype)],
        lambda n, xs: [xs[0].copy()],
        domain="edgec",
        notes="memcpy",
    )
)
