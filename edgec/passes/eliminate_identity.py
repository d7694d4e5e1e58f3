"""Remove Identity and (inference) Dropout nodes by renaming their consumers'
inputs. A node whose output is a graph output keeps its name by renaming the
producer instead; an Identity from a graph input straight to a graph output
stays (it becomes a copy)."""

from __future__ import annotations

from edgec.ir import Graph, Node
from edgec.passes.pipeline import GraphPass

_IDENTITY_OPS = {"Identity", "Dropout"}


def _run(g: Graph) -> Graph:
    nodes = list(g.nodes)
    changed = True
    while changed:
        changed = False
        for n in nodes:
            if n.op not in _IDENTITY_OPS or n.domain:
                continue
            src, dst = n.inputs[0], n.outputs[0]
            if dst in g.outputs:
                if src in g.inputs or src in g.outputs or g.is_const(src):
                    continue
                # rename the producer's output to the graph output name
                rename = {src: dst}
            else:
                rename = {dst: src}
            new = []
            for m in nodes:
                if m is n:
                    continue
                new.append(m.with_(inputs=tuple(rename.get(i, i) for i in m.inputs),
                                   outputs=tuple(rename.get(o, o) for o in m.outputs)))
            nodes = new
            changed = True
            break
    return g.with_nodes(nodes)


PASS = GraphPass("eliminate_identity", _run)
