"""Run and profile a compiled model on a board through the serial link, and
compare with the host build of the same C (bit for bit) and the reference."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgec.device.link import Link
from edgec.errors import EdgecError, InputFileError

from edgec.build.firmware import MODEL_FILES


class WrongModelError(EdgecError):
    """The board runs another model than the build folder holds."""


@dataclass
class BuildFolder:
    path: Path
    meta: dict[str, Any]

    @classmethod
    def open(cls, path: Path) -> "BuildFolder":
        mp = path / "metadata.json"
        if not mp.exists():
            raise InputFileError(f"{path} is not an edgec build folder (no metadata.json); run `edgec compile ... -o {path}`")
        return cls(path, json.loads(mp.read_text()))

    @property
    def name(self) -> str:
        return self.meta["model"]

    def model_hash(self) -> str:
        from edgec.build.firmware import model_hash

        return model_hash({f: (self.path / f).read_text() for f in MODEL_FILES})

    @property
    def board(self) -> str | None:
        return self.meta.get("board")

    def firmware(self) -> tuple[bytes, dict[str, Any]]:
        fw = self.path / "firmware.bin"
        if not fw.exists():
            raise InputFileError(f"{self.path} has no firmware: compile with --board, e.g. `edgec compile model.onnx --board qemu-m7 -o {self.path}`")
        return fw.read_bytes(), json.loads((self.path / "firmware.json").read_text())

    def input_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(t["shape"]) for t in self.meta["inputs"]]

    def output_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(t["shape"]) for t in self.meta["outputs"]]

    def host_model(self):
        from edgec.hostrun import HostModel

        files = {f.name: f.read_text() for f in self.path.iterdir() if f.suffix in (".c", ".h") and f.name.startswith("model")}
        return HostModel(files, self.name, self.input_shapes(), self.output_shapes())


def check_board_model(link: Link, build: BuildFolder) -> dict[str, Any]:
    info = link.info()
    want = build.model_hash()
    if info.get("model_hash") != want or info.get("model") != build.name:
        raise WrongModelError(
            f"wrong model on the board: it runs '{info.get('model')}' (hash {info.get('model_hash')}), "
            f"{build.path} holds '{build.name}' (hash {want}); flash it first with `edgec flash {build.path} --port ...`"
        )
    return info


@dataclass
class BoardRun:
    outputs: list[np.ndarray]
    counter: int
    counter_unit: str
    info: dict[str, Any] = field(default_factory=dict)


def run_on_board(link: Link, build: BuildFolder, inputs: list[np.ndarray], info: dict[str, Any] | None = None) -> BoardRun:
    info = info or check_board_model(link, build)
    for k, (x, shape) in enumerate(zip(inputs, build.input_shapes())):
        link.write_input(k, np.ascontiguousarray(x, np.float32).reshape(shape).tobytes())
    counter = link.invoke()
    outs = []
    for k, shape in enumerate(build.output_shapes()):
        n = int(np.prod(shape)) * 4
        outs.append(np.frombuffer(link.read_output(k, n), np.float32).reshape(shape).copy())
    return BoardRun(outs, counter, info.get("counter", "counts"), info)
