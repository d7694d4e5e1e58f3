"""Passes are pure functions Graph -> Graph with a name and the passes they need
before them; pipelines are lists of pass names."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from edgec.ir import Graph


@dataclass(frozen=True)
class GraphPass:
    name: str
    fn: Callable[[Graph], Graph]
    requires: tuple[str, ...] = ()
    doc: str = ""

    def __call__(self, g: Graph) -> Graph:
        return self.fn(g)


_PASS_MODULES = {
    "eliminate_identity": "edgec.passes.eliminate_identity",
    "fold_batchnorm": "edgec.passes.fold_batchnorm",
    "fuse_activation": "edgec.passes.fuse_activation",
    "insert_output_copies": "edgec.passes.insert_output_copies",
}

PIPELINES: dict[str, list[str]] = {
    "float": ["eliminate_identity", "fold_batchnorm", "fuse_activation", "insert_output_copies"],
    "int8": ["insert_output_copies"],
    "none": [],
}


def get_pass(name: str) -> GraphPass:
    mod = importlib.import_module(_PASS_MODULES[name])
    return mod.PASS


def run_pipeline(g: Graph, pipeline: str | list[str] = "float") -> Graph:
    names = PIPELINES[pipeline] if isinstance(pipeline, str) else pipeline
    done: list[str] = []
    for n in names:
        p = get_pass(n)
        missing = [r for r in p.requires if r not in done]
        if missing:
            raise RuntimeError(f"pass {n} needs {missing} to run before it")
        g = p(g)
        done.append(n)
    return g
