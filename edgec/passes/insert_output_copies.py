"""Make every graph output the product of its own kernel.

Graph outputs are written straight into the caller's arrays, which needs some
kernel to write the output's bytes. An output that is a graph input, a
constant, an alias (Reshape, ...) of one of those, or that shares its bytes
with an earlier output, gets an explicit copy node (memcpy)."""

from __future__ import annotations

from edgec.ir import Graph, Node, Tensor
from edgec.ops.registry import lookup
from edgec.passes.pipeline import GraphPass


def alias_root(g: Graph, t: str, prod: dict[str, Node]) -> str:
    while t in prod and (d := lookup(prod[t].op, prod[t].domain)) is not None and d.alias:
        t = prod[t].inputs[0]
    return t


def _run(g: Graph) -> Graph:
    prod = g.producers()
    nodes = list(g.nodes)
    tensors = dict(g.tensors)
    outputs = list(g.outputs)
    seen: set[str] = set()
    for k, o in enumerate(g.outputs):
        root = alias_root(g, o, prod)
        if not (root in g.inputs or g.is_const(root) or root in seen):
            seen.add(root)
            continue
        dst = g.fresh_name(f"{o}__out", tensors)
        tensors[dst] = Tensor(dst, g.tensor(o).shape, g.tensor(o).dtype)
        nodes.append(Node(f"copy_{o}", "Copy", (o,), (dst,), {}, "edgec"))
        outputs[k] = dst
    out = g.with_nodes(nodes, tensors)
    out.outputs = outputs
    return out


PASS = GraphPass("insert_output_copies", _run)
