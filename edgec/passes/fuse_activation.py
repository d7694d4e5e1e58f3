"""Fuse elementwise activations into their producer as an epilogue.

Conv -> Relu becomes one node whose `_epilogue` lists the activation nodes;
the lowering emits them into the same Relax function, where TVM's FuseOps /
FuseTIR makes one kernel (no intermediate tensor, one pass over the output).
"""

from __future__ import annotations

from edgec.ir import Graph, Node
from edgec.ops.registry import lookup
from edgec.passes.pipeline import GraphPass

_PRODUCERS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div",
              "AveragePool", "GlobalAveragePool", "MaxPool"}


def _run(g: Graph) -> Graph:
    prod = g.producers()
    cons = g.consumers()
    nodes = list(g.nodes)
    merged: dict[int, Node] = {}
    drop: set[int] = set()
    for n in g.nodes:
        d = lookup(n.op, n.domain)
        if d is None or not d.activation:
            continue
        # the activation's runtime input must be its only runtime input
        if any(i and not g.is_const(i) for i in n.inputs[1:]):
            continue
        src = n.inputs[0]
        p = prod.get(src)
        if p is None or id(p) in drop:
            continue
        p = merged.get(id(p), p)
        if p.op not in _PRODUCERS or len(cons.get(src, [])) != 1 or src in g.outputs:
            continue
        orig = prod[src]
        epi = list(p.attrs.get("_epilogue", ())) + [n]
        fused = p.with_(outputs=(n.outputs[0],), attrs={**p.attrs, "_epilogue": tuple(epi)})
        merged[id(orig)] = fused
        prod[n.outputs[0]] = orig
        drop.add(id(n))
    nodes = [merged.get(id(n), n) for n in nodes if id(n) not in drop]
    return g.with_nodes(nodes)


PASS = GraphPass("fuse_activation", _run)
