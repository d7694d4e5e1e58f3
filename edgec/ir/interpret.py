"""Run a Graph with its ops' NumPy references: the compiler's own executable
semantics (used for calibration, constant folding checks and pass tests)."""

from __future__ import annotations

import numpy as np

from edgec.ir.graph import Graph


def run_reference(g: Graph, feeds: dict[str, np.ndarray], keep_all: bool = False, *, float32: bool = False,
                  on_node=None) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Outputs of `g` for `feeds` (graph input name -> array), fused epilogues
    included. With keep_all, every tensor's value by name. float32: references
    that compute in float64 are rounded back to float32 (what the C does).
    on_node(node, env) runs after each node (calibration's probes)."""
    from edgec.ops.registry import lookup

    env: dict[str, np.ndarray] = {t.name: t.data for t in g.constants()}
    env.update(feeds)
    for n in g.nodes:
        outs = lookup(n.op, n.domain).reference(n, [env[i] if i else None for i in n.inputs])
        for e in n.attrs.get("_epilogue", ()):
            outs = lookup(e.op, e.domain).reference(e, [outs[0]] + [env[i] if i else None for i in e.inputs[1:]])
        for o, v in zip(n.outputs, outs):
            if o:
                v = np.asarray(v)
                env[o] = v.astype(np.float32) if float32 and v.dtype == np.float64 else v
        if on_node is not None:
            on_node(n, env)
    return env if keep_all else [env[o] for o in g.outputs]
