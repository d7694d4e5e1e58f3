"""Per-layer profile of a model on a board: counters from the firmware's
PROFILE command (cycles on real boards, emulated instructions on QEMU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgec.device.link import Link
from edgec.device.session import BuildFolder, check_board_model, random_inputs, run_on_board


@dataclass
class LayerProfile:
    index: int
    name: str
    op: str
    kernel: str
    macs: int
    count: int  # median over runs

    @property
    def macs_per_count(self) -> float | None:
        return self.macs / self.count if self.count else None


@dataclass
class Profile:
    model: str
    board: str
    unit: str
    runs: int
    total: int  # median whole-inference counter
    total_spread: int  # max - min over runs (0 = deterministic)
    layers: list[LayerProfile]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "board": self.board,
            "unit": self.unit,
            "runs": self.runs,
            "total": self.total,
            "total_spread": self.total_spread,
            "macs": self.macs,
            "macs_per_count": self.macs / self.total if self.total else None,
            "layers": [
                {"index": L.index, "name": L.name, "op": L.op, "kernel": L.kernel, "macs": L.macs, "count": L.count,
                 "share": L.count / self.total if self.total else None, "macs_per_count": L.macs_per_count}
                for L in self.layers
            ],
        }


def profile_on_board(link: Link, build: BuildFolder, runs: int, seed: int = 0) -> Profile:
    info = check_board_model(link, build)
    if not info.get("layer_profile", True):
        from edgec.errors import EdgecError

        raise EdgecError(f"the firmware on the board was built without per-layer profiling (layer_profile=False); "
                         f"build it with the default options to profile {build.name}")
    inputs = random_inputs(build, np.random.default_rng(seed))  # in the model's dtypes (int8: -128..127)
    layers_meta = build.meta["layers"]
    totals, per_layer = [], []
    for _ in range(runs):
        r = run_on_board(link, build, inputs, info)
        totals.append(r.counter)
        per_layer.append(link.profile(len(layers_meta)))
    med = np.median(np.asarray(per_layer, dtype=np.float64), axis=0)
    layers = [
        LayerProfile(m["index"], m["name"], m["op"], m["kernel_source"], int(m["macs"]), int(c))
        for m, c in zip(layers_meta, med)
    ]
    return Profile(build.name, info.get("board", build.board or "?"), info.get("counter", "counts"), runs,
                   int(np.median(totals)), int(max(totals) - min(totals)), layers)


def plot_profile(p: Profile, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [L for L in p.layers if L.count > 0]
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.28 * len(shown) + 1.2)))
    labels = [f"{L.index} {L.op}" for L in shown]
    ax.barh(range(len(shown)), [L.count for L in shown], color="#3b6ea8")
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(p.unit)
    ax.set_title(f"{p.model} on {p.board}: {p.total:,} {p.unit} per inference, {p.macs / max(p.total, 1):.3f} MACs per {p.unit.split()[0].rstrip('s')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
