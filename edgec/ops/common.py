"""Geometry shared by convolution and pooling ops (ONNX semantics)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgec.errors import ModelError
from edgec.ir import Node


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]  # spatial output size

    @property
    def pads(self) -> tuple[int, ...]:
        return self.pads_begin + self.pads_end


def window(node: Node, spatial_in: Sequence[int], kernel: Sequence[int], ceil_mode: bool = False) -> Window:
    nd = len(spatial_in)
    strides = tuple(node.attrs.get("strides", [1] * nd))
    dil = tuple(node.attrs.get("dilations", [1] * nd))
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-i // s) for i, s in zip(spatial_in, strides)]
        total = [max(0, (o - 1) * s + e - i) for o, s, e, i in zip(out, strides, eff, spatial_in)]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        pb, pe = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad == "VALID":
        pb = pe = [0] * nd
    elif auto_pad in ("NOTSET", ""):
        pads = list(node.attrs.get("pads", [0] * (2 * nd)))
        pb, pe = pads[:nd], pads[nd:]
    else:
        raise ModelError(f"node '{node.name}': unknown auto_pad '{auto_pad}'")
    out = []
    for i, s, e, b, en in zip(spatial_in, strides, eff, pb, pe):
        span = i + b + en - e
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= i + b:  # last window must start inside the input
            o -= 1
        out.append(o)
    if any(o <= 0 for o in out):
        raise ModelError(f"node '{node.name}': window larger than its input {tuple(spatial_in)}")
    return Window(tuple(kernel), strides, dil, tuple(pb), tuple(pe), tuple(out))


def pad_spatial(x: np.ndarray, w: Window, value: float = 0.0) -> np.ndarray:
    pad = [(0, 0), (0, 0)] + list(zip(w.pads_begin, w.pads_end))
    return np.pad(x, pad, constant_values=value)


def windows_view(xp: np.ndarray, w: Window) -> np.ndarray:
    """(N, C, *out, *kernel) strided view over a padded input."""
    nd = len(w.kernel)
    shape = xp.shape[:2] + w.out + w.kernel
    st = xp.strides
    strides = st[:2] + tuple(st[2 + i] * w.strides[i] for i in range(nd)) + tuple(
        st[2 + i] * w.dilations[i] for i in range(nd)
    )
    return np.lib.stride_tricks.as_strided(xp, shape=shape, strides=strides, writeable=False)
