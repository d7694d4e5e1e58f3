"""Fold BatchNormalization into the preceding Conv / ConvTranspose / Gemm.

y = (conv(x, W) + b - mean) * gamma / sqrt(var + eps) + beta
  = conv(x, W * s) + (b - mean) * s + beta,   s = gamma / sqrt(var + eps)

Applies when the BN follows the producer directly, the producer's output has no
other reader, and weights and BN parameters are constants. A BN that cannot be
folded stays and gets its own kernel.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, Node, Tensor
from edgec.passes.pipeline import GraphPass

_FOLDABLE = {"Conv", "ConvTranspose", "Gemm"}


def _bn_scale_shift(g: Graph, bn: Node) -> tuple[np.ndarray, np.ndarray] | None:
    if bn.attrs.get("training_mode", 0) or any(bn.outputs[1:]):
        return None
    if not all(g.is_const(i) for i in bn.inputs[1:5]):
        return None
    gamma, beta, mean, var = (g.tensor(i).data.astype(np.float64) for i in bn.inputs[1:5])
    s = gamma / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
    return s, beta - mean * s


def _run(g: Graph) -> Graph:
    prod = g.producers()
    cons = g.consumers()
    tensors = dict(g.tensors)
    replace: dict[int, Node] = {}
    drop: set[int] = set()
    for bn in g.nodes:
        if bn.op != "BatchNormalization":
            continue
        p = prod.get(bn.inputs[0])
        if p is None or p.op not in _FOLDABLE or id(p) in replace or p.attrs.get("_epilogue"):
            continue  # (a fused activation sits between the producer and the BN)
        if len(cons.get(p.outputs[0], [])) != 1 or p.outputs[0] in g.outputs:
            continue
        if not g.is_const(p.inputs[1]) or (len(p.inputs) > 2 and p.inputs[2] and not g.is_const(p.inputs[2])):
            continue
        ss = _bn_scale_shift(g, bn)
        if ss is None:
            continue
        s, shift = ss
        w = g.tensor(p.inputs[1]).data.astype(np.float64)
        if p.op == "Conv":
            w2 = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
            c_out = w.shape[0]
        elif p.op == "ConvTranspose":
            grp = int(p.attrs.get("group", 1))
            cin, mg = w.shape[0], w.shape[1]
            w2 = (w.reshape(grp, cin // grp, mg, *w.shape[2:]) * s.reshape(grp, 1, mg, *([1] * (w.ndim - 2)))).reshape(w.shape)
            c_out = mg * grp
        else:  # Gemm: output features along B's N axis; needs a 1-D bias to fold into
            if p.attrs.get("alpha", 1.0) != 1.0 or p.attrs.get("beta", 1.0) != 1.0:
                continue
            w2 = w * (s.reshape(-1, 1) if p.attrs.get("transB", 0) else s.reshape(1, -1))
            c_out = s.shape[0]
        if s.shape[0] != c_out:
            continue
        b = g.tensor(p.inputs[2]).data.astype(np.float64) if len(p.inputs) > 2 and p.inputs[2] else np.zeros(c_out)
        if b.size != c_out:
            continue
        b2 = b.reshape(-1) * s + shift
        wname = g.fresh_name(f"{p.name}_w_bnfold", tensors)
        bname = g.fresh_name(f"{p.name}_b_bnfold", tensors)
        tensors[wname] = Tensor(wname, w.shape, "float32", w2.astype(np.float32))
        tensors[bname] = Tensor(bname, (c_out,), "float32", b2.astype(np.float32))
        ins = (p.inputs[0], wname, bname)
        replace[id(p)] = p.with_(inputs=ins, outputs=(bn.outputs[0],))
        drop.add(id(bn))
    nodes = [replace.get(id(n), n) for n in g.nodes if id(n) not in drop]
    return g.with_nodes(nodes, tensors)


PASS = GraphPass("fold_batchnorm", _run)
