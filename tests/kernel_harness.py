"""Host harness for the int8 kernels of runtime_c/kernels.

* `build_kernel_library` compiles the kernels into a host shared library with
  `edgec.build.build_host_shared_library` (portable path, or the DSP path with
  the ACLE intrinsics emulated in C) and wraps every kernel for ctypes/NumPy.
* `TfliteModel` reads a .tflite flatbuffer with the `tflite` package: operators,
  builtin options, tensor shapes, quantisation parameters and constant data.
* `run_layer` maps one TFLite operator onto a kernel call: it computes the
  kernel's integer parameters from the model's float scales with edgec/qmath.py
  (what edgec's code generator does) and runs the C kernel on given inputs.
* `litert_layer_io` / `tflm_layer_io` run a model in LiteRT (default int8
  kernels, no delegate) or in the TFLite Micro Python interpreter, keeping
  every intermediate tensor.
"""

from __future__ import annotations

import ctypes as C
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgec import qmath
from edgec.build import build_host_shared_library

ROOT = Path(__file__).resolve().parent.parent
KERNEL_DIR = ROOT / "runtime_c" / "kernels"
KERNEL_INCLUDE = KERNEL_DIR / "include"
from edgec.resources import mlperf_models_dir  # noqa: E402

MLPERF_DIR = mlperf_models_dir()
MLPERF_MODELS = ("kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model")

EDGEC_OK = 0


def kernel_sources() -> list[Path]:
    return sorted(KERNEL_DIR.glob("*.c"))


# --- ctypes mirror of edgec_kernels_s8.h ------------------------------------------------------


class Dims(C.Structure):
    _fields_ = [("n", C.c_int32), ("h", C.c_int32), ("w", C.c_int32), ("c", C.c_int32)]


class HW(C.Structure):
    _fields_ = [("h", C.c_int32), ("w", C.c_int32)]


class QuantParams(C.Structure):
    _fields_ = [("multiplier", C.POINTER(C.c_int32)), ("shift", C.POINTER(C.c_int32)), ("per_channel", C.c_int32)]


class ConvParams(C.Structure):
    _fields_ = [("input_offset", C.c_int32), ("output_offset", C.c_int32), ("stride", HW), ("padding", HW),
                ("dilation", HW), ("act_min", C.c_int32), ("act_max", C.c_int32)]


class ChannelMap(C.Structure):
    _fields_ = [("live", C.c_int32), ("live_ch", C.POINTER(C.c_int16)), ("dead", C.c_int32),
                ("dead_ch", C.POINTER(C.c_int16)), ("dead_value", C.POINTER(C.c_int8))]


class DwConvParams(C.Structure):
    _fields_ = [("input_offset", C.c_int32), ("output_offset", C.c_int32), ("stride", HW), ("padding", HW),
                ("dilation", HW), ("depth_multiplier", C.c_int32), ("act_min", C.c_int32), ("act_max", C.c_int32)]


class FcParams(C.Structure):
    _fields_ = [("input_offset", C.c_int32), ("filter_offset", C.c_int32), ("output_offset", C.c_int32),
                ("act_min", C.c_int32), ("act_max", C.c_int32)]


class PoolParams(C.Structure):
    _fields_ = [("stride", HW), ("padding", HW), ("filter", HW), ("act_min", C.c_int32), ("act_max", C.c_int32)]


class AddParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in (
        "input1_offset", "input1_multiplier", "input1_shift", "input2_offset", "input2_multiplier", "input2_shift",
        "left_shift", "output_offset", "output_multiplier", "output_shift", "act_min", "act_max")]


class MulParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in (
        "input1_offset", "input2_offset", "output_offset", "output_multiplier", "output_shift", "act_min", "act_max")]


_P8 = C.POINTER(C.c_int8)
_P32 = C.POINTER(C.c_int32)


def _p8(a: np.ndarray):
    return a.ctypes.data_as(_P8)


def _p32(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(_P32)


def _i8(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int8)


def _i32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int32)


def _dims(shape) -> Dims:
    return Dims(*[int(v) for v in shape])


class KernelError(RuntimeError):
    pass


@dataclass
class Quant:
    """Owns the multiplier/shift arrays a QuantParams points into."""

    multiplier: np.ndarray
    shift: np.ndarray
    per_channel: bool

    def __post_init__(self):
        self.multiplier = _i32(self.multiplier)
        self.shift = _i32(self.shift)
        self.struct = QuantParams(_p32(self.multiplier), _p32(self.shift), int(self.per_channel))


class KernelLib:
    """ctypes bindings of one build of the kernel library, NumPy in and out."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lib = C.CDLL(str(self.path))
        L = self.lib
        sig = {
            "edgec_convolve_s8_get_buffer_size": (C.c_int32, [C.POINTER(Dims), C.POINTER(Dims)]),
            "edgec_convolve_1x1_s8_get_buffer_size": (C.c_int32, [C.POINTER(Dims), C.POINTER(Dims)]),
            "edgec_convolve_s8": (C.c_int32, [C.c_void_p, C.POINTER(ConvParams), C.POINTER(QuantParams),
                                             C.POINTER(Dims), _P8, C.POINTER(Dims), _P8, _P32, C.POINTER(Dims), _P8]),
            "edgec_convolve_1x1_s8": (C.c_int32, [C.c_void_p, C.POINTER(ConvParams), C.POINTER(QuantParams),
                                                 C.POINTER(Dims), _P8, C.POINTER(Dims), _P8, _P32, C.POINTER(Dims),
                                                 _P8]),
            "edgec_convolve_1x1_pruned_s8": (C.c_int32, [C.c_void_p, C.POINTER(ConvParams), C.POINTER(QuantParams),
                                                        C.POINTER(ChannelMap), C.POINTER(Dims), _P8, C.POINTER(Dims),
                                                        _P8, _P32, C.POINTER(Dims), _P8]),
            "edgec_depthwise_conv_s8": (C.c_int32, [C.POINTER(DwConvParams), C.POINTER(QuantParams), C.POINTER(Dims),
                                                   _P8, C.POINTER(Dims), _P8, _P32, C.POINTER(Dims), _P8]),
            "edgec_fully_connected_s8": (C.c_int32, [C.POINTER(FcParams), C.POINTER(QuantParams), C.c_int32,
                                                    C.c_int32, C.c_int32, _P8, _P8, _P32, _P8]),
            "edgec_add_s8": (C.c_int32, [C.POINTER(AddParams), _P8, C.c_int32, _P8, C.c_int32, _P8]),
            "edgec_mul_s8": (C.c_int32, [C.POINTER(MulParams), _P8, C.c_int32, _P8, C.c_int32, _P8]),
            "edgec_avgpool_s8": (C.c_int32, [C.POINTER(PoolParams), C.POINTER(Dims), _P8, C.POINTER(Dims), _P8]),
            "edgec_maxpool_s8": (C.c_int32, [C.POINTER(PoolParams), C.POINTER(Dims), _P8, C.POINTER(Dims), _P8]),
            "edgec_softmax_s8": (C.c_int32, [_P8, C.c_int32, C.c_int32, C.c_int32, C.c_int32, C.c_int32, _P8]),
            "edgec_logistic_s8": (C.c_int32, [_P8, C.c_int32, C.c_int32, C.c_int32, C.c_int32, C.c_int32, _P8]),
            "edgec_tanh_s8": (C.c_int32, [_P8, C.c_int32, C.c_int32, C.c_int32, C.c_int32, C.c_int32, _P8]),
            "edgec_lut_s8": (C.c_int32, [_P8, C.c_int32, _P8, _P8]),
            "edgec_pad_s8": (C.c_int32, [_P8, C.c_int32, _P32, _P32, _P32, C.c_int8, _P8]),
            "edgec_concat_s8": (C.c_int32, [C.POINTER(_P8), _P32, C.c_int32, C.c_int32, C.c_int32, _P8]),
        }
        for name, (res, args) in sig.items():
            f = getattr(L, name)
            f.restype = res
            f.argtypes = args

    @staticmethod
    def _check(status: int, name: str) -> None:
        if status != EDGEC_OK:
            raise KernelError(f"{name} returned {status}")

    # convolution ------------------------------------------------------------------------------

    def conv_buffer_size(self, input_shape, filter_shape, one_by_one: bool = False) -> int:
        f = self.lib.edgec_convolve_1x1_s8_get_buffer_size if one_by_one else self.lib.edgec_convolve_s8_get_buffer_size
        return int(f(C.byref(_dims(input_shape)), C.byref(_dims(filter_shape))))

    def convolve(self, x, w, bias, quant: Quant, *, input_offset, output_offset, stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), out_hw, act_min=-128, act_max=127, one_by_one: bool = False) -> np.ndarray:
        x = _i8(x)
        w = _i8(w)
        b = None if bias is None else _i32(bias)
        out_shape = (x.shape[0], out_hw[0], out_hw[1], w.shape[0])
        out = np.zeros(out_shape, dtype=np.int8)
        p = ConvParams(int(input_offset), int(output_offset), HW(*stride), HW(*padding), HW(*dilation),
                       int(act_min), int(act_max))
        nbuf = self.conv_buffer_size(x.shape, w.shape, one_by_one)
        buf = np.zeros(max(nbuf, 4) // 4 + 1, dtype=np.int32)  # int32: 4-byte aligned
        fn = self.lib.edgec_convolve_1x1_s8 if one_by_one else self.lib.edgec_convolve_s8
        st = fn(buf.ctypes.data if nbuf else None, C.byref(p), C.byref(quant.struct), C.byref(_dims(x.shape)), _p8(x),
                C.byref(_dims(w.shape)), _p8(w), _p32(b), C.byref(_dims(out_shape)), _p8(out))
        self._check(st, fn.__name__)
        return out

    def convolve_1x1_pruned(self, x, w, bias, quant: Quant, *, input_offset, output_offset, act_min=-128,
                            act_max=127) -> np.ndarray:
        """A stride-1 pointwise layer through edgec_convolve_1x1_pruned_s8: w, bias and
        quant are the whole layer's; the all-zero filters are taken out here, as the
        compiler does (edgec.qmath.pruned_channels)."""
        x, w = _i8(x), _i8(w)
        cout = w.shape[0]
        m = np.broadcast_to(quant.multiplier, (cout,))
        s = np.broadcast_to(quant.shift, (cout,))
        pc = qmath.pruned_channels(w, bias, m, s, output_offset, act_min, act_max)
        live = pc.live
        wl = _i8(w[live])
        bl = None if bias is None else _i32(np.asarray(bias)[live])
        ql = Quant(m[live], s[live], True)
        i16 = C.POINTER(C.c_int16)
        live_ch, dead_ch = np.ascontiguousarray(live, np.int16), np.ascontiguousarray(pc.dead, np.int16)
        dead_val = _i8(pc.dead_value)
        cmap = ChannelMap(len(live), live_ch.ctypes.data_as(i16), len(pc.dead), dead_ch.ctypes.data_as(i16),
                          _p8(dead_val))
        out_shape = x.shape[:3] + (cout,)
        out = np.zeros(out_shape, dtype=np.int8)
        p = ConvParams(int(input_offset), int(output_offset), HW(1, 1), HW(0, 0), HW(1, 1), int(act_min), int(act_max))
        nbuf = self.conv_buffer_size(x.shape, wl.shape, True)
        buf = np.zeros(max(nbuf, 4) // 4 + 1, dtype=np.int32)
        st = self.lib.edgec_convolve_1x1_pruned_s8(buf.ctypes.data if nbuf else None, C.byref(p), C.byref(ql.struct),
                                                   C.byref(cmap), C.byref(_dims(x.shape)), _p8(x),
                                                   C.byref(_dims(wl.shape)), _p8(wl), _p32(bl),
                                                   C.byref(_dims(out_shape)), _p8(out))
        self._check(st, "edgec_convolve_1x1_pruned_s8")
        return out

    def depthwise_conv(self, x, w, bias, quant: Quant, *, input_offset, output_offset, depth_multiplier=1,
                       stride=(1, 1), padding=(0, 0), dilation=(1, 1), out_hw, act_min=-128,
                       act_max=127) -> np.ndarray:
        x = _i8(x)
        w = _i8(w)
        b = None if bias is None else _i32(bias)
        out_shape = (x.shape[0], out_hw[0], out_hw[1], w.shape[3])
        out = np.zeros(out_shape, dtype=np.int8)
        p = DwConvParams(int(input_offset), int(output_offset), HW(*stride), HW(*padding), HW(*dilation),
                         int(depth_multiplier), int(act_min), int(act_max))
        st = self.lib.edgec_depthwise_conv_s8(C.byref(p), C.byref(quant.struct), C.byref(_dims(x.shape)), _p8(x),
                                              C.byref(_dims(w.shape)), _p8(w), _p32(b), C.byref(_dims(out_shape)),
                                              _p8(out))
        self._check(st, "edgec_depthwise_conv_s8")
        return out

    def fully_connected(self, x, w, bias, quant: Quant, *, input_offset, output_offset, filter_offset=0,
                        act_min=-128, act_max=127) -> np.ndarray:
        w = _i8(w)
        x = _i8(x).reshape(-1, w.shape[1])
        b = None if bias is None else _i32(bias)
        out = np.zeros((x.shape[0], w.shape[0]), dtype=np.int8)
        p = FcParams(int(input_offset), int(filter_offset), int(output_offset), int(act_min), int(act_max))
        st = self.lib.edgec_fully_connected_s8(C.byref(p), C.byref(quant.struct), x.shape[0], w.shape[1], w.shape[0],
                                               _p8(x), _p8(w), _p32(b), _p8(out))
        self._check(st, "edgec_fully_connected_s8")
        return out

    # elementwise ------------------------------------------------------------------------------

    def add(self, a, b, p: qmath.AddParams) -> np.ndarray:
        a, b = _i8(a), _i8(b)
        out = np.zeros(max(a.size, b.size), dtype=np.int8)
        st = self.lib.edgec_add_s8(C.byref(AddParams(*[int(getattr(p, f)) for f, _ in AddParams._fields_])), _p8(a),
                                   a.size, _p8(b), b.size, _p8(out))
        self._check(st, "edgec_add_s8")
        return out.reshape(a.shape if a.size >= b.size else b.shape)

    def mul(self, a, b, p: qmath.MulParams) -> np.ndarray:
        a, b = _i8(a), _i8(b)
        out = np.zeros(max(a.size, b.size), dtype=np.int8)
        st = self.lib.edgec_mul_s8(C.byref(MulParams(*[int(getattr(p, f)) for f, _ in MulParams._fields_])), _p8(a),
                                   a.size, _p8(b), b.size, _p8(out))
        self._check(st, "edgec_mul_s8")
        return out.reshape(a.shape if a.size >= b.size else b.shape)

    # pooling ----------------------------------------------------------------------------------

    def pool(self, kind: str, x, *, filter_hw, stride, padding, out_hw, act_min=-128, act_max=127) -> np.ndarray:
        x = _i8(x)
        out_shape = (x.shape[0], out_hw[0], out_hw[1], x.shape[3])
        out = np.zeros(out_shape, dtype=np.int8)
        p = PoolParams(HW(*stride), HW(*padding), HW(*filter_hw), int(act_min), int(act_max))
        fn = self.lib.edgec_avgpool_s8 if kind == "avg" else self.lib.edgec_maxpool_s8
        st = fn(C.byref(p), C.byref(_dims(x.shape)), _p8(x), C.byref(_dims(out_shape)), _p8(out))
        self._check(st, fn.__name__)
        return out

    # activations ------------------------------------------------------------------------------

    def softmax(self, x, p: qmath.SoftmaxParams) -> np.ndarray:
        x = _i8(x)
        out = np.zeros_like(x)
        row = x.shape[-1]
        st = self.lib.edgec_softmax_s8(_p8(x), x.size // row, row, p.input_multiplier, p.input_left_shift,
                                       p.diff_min, _p8(out))
        self._check(st, "edgec_softmax_s8")
        return out

    def sigmoid_like(self, kind: str, x, p: qmath.SigmoidParams) -> np.ndarray:
        x = _i8(x)
        out = np.zeros_like(x)
        fn = self.lib.edgec_logistic_s8 if kind == "logistic" else self.lib.edgec_tanh_s8
        st = fn(_p8(x), x.size, p.input_zero_point, p.input_range_radius, p.input_multiplier, p.input_left_shift,
                _p8(out))
        self._check(st, fn.__name__)
        return out

    def lut(self, x, table) -> np.ndarray:
        x, t = _i8(x), _i8(table)
        out = np.zeros_like(x)
        self._check(self.lib.edgec_lut_s8(_p8(x), x.size, _p8(t), _p8(out)), "edgec_lut_s8")
        return out

    # data movement ----------------------------------------------------------------------------

    def pad(self, x, pads, value: int) -> np.ndarray:
        x = _i8(x)
        pads = np.asarray(pads, dtype=np.int32).reshape(-1, 2)
        out = np.zeros([d + int(a) + int(b) for d, (a, b) in zip(x.shape, pads)], dtype=np.int8)
        dims, lo, hi = _i32(x.shape), _i32(pads[:, 0]), _i32(pads[:, 1])
        st = self.lib.edgec_pad_s8(_p8(x), x.ndim, _p32(dims), _p32(lo), _p32(hi), int(value), _p8(out))
        self._check(st, "edgec_pad_s8")
        return out

    def concat(self, xs, axis: int) -> np.ndarray:
        xs = [_i8(x) for x in xs]
        axis = axis % xs[0].ndim
        outer = int(np.prod(xs[0].shape[:axis], dtype=np.int64))
        inner = int(np.prod(xs[0].shape[axis + 1:], dtype=np.int64))
        sizes = _i32([x.shape[axis] for x in xs])
        ptrs = (_P8 * len(xs))(*[_p8(x) for x in xs])
        shape = list(xs[0].shape)
        shape[axis] = int(sizes.sum())
        out = np.zeros(shape, dtype=np.int8)
        st = self.lib.edgec_concat_s8(ptrs, _p32(sizes), len(xs), outer, inner, _p8(out))
        self._check(st, "edgec_concat_s8")
        return out


def build_kernel_library(out_dir: Path, *, emulate_dsp: bool = False) -> KernelLib:
    """Build (or reuse, keyed by the sources' hash) the host library of the kernels."""
    srcs = kernel_sources()
    h = hashlib.sha256()
    for s in srcs + sorted(KERNEL_DIR.glob("*.h")) + sorted(KERNEL_INCLUDE.glob("*.h")):
        h.update(s.name.encode())
        h.update(s.read_bytes())
    h.update(b"dsp" if emulate_dsp else b"portable")
    out = Path(out_dir) / f"libedgec_kernels_{'dsp' if emulate_dsp else 'portable'}_{h.hexdigest()[:12]}.so"
    if not out.is_file():
        defines = {"EDGEC_EMULATE_DSP": "1"} if emulate_dsp else None
        build_host_shared_library(srcs, out, include_dirs=[KERNEL_INCLUDE, KERNEL_DIR], defines=defines)
    return KernelLib(out)


# --- worst-case stack per kernel call --------------------------------------------------------

# Frames of the assembly routines (top-level asm in the .c files, invisible to
# -fstack-usage): pushed registers plus locals, from their sources.
ASM_FRAMES = {"edgec_nn_gemm_2x2_asm": 80, "edgec_nn_ws_asm": 56, "edgec_nn_pw_asm": 40,
              "edgec_fc_rows_asm": 300, "edgec_add_exact_asm": 36}
ASM_FRAMES["edgec_dw3x3_one_asm"] = 68
ASM_FRAMES["edgec_dw3x3_two_asm"] = 100


def worst_stack(obj_dir: Path, objdump: str = "arm-none-eabi-objdump") -> dict[str, tuple[int, list[str]]]:
    """Deepest stack of every public kernel (edgec_*_s8), in bytes, with its call chain.

    Frames from the compiler's .su files (plus ASM_FRAMES); calls from the
    disassembly's relocations: a BL adds the callee's frame to the caller's, a tail
    call (B.W) replaces the caller's frame. gcc's -fcallgraph-info counts tail
    calls as calls, which overstates the kernels that dispatch by tail call."""
    import re
    import subprocess

    frames = dict(ASM_FRAMES)
    for su in Path(obj_dir).glob("*.su"):
        for line in su.read_text().splitlines():
            loc, size, _ = line.split("\t")
            name = loc.rsplit(":", 1)[1]
            frames[name] = max(frames.get(name, 0), int(size))
    calls: dict[str, set[tuple[str, bool]]] = {}
    for obj in Path(obj_dir).glob("*.o"):
        dis = subprocess.run([objdump, "-d", "-r", str(obj)], capture_output=True, text=True, check=True).stdout
        cur = None
        for line in dis.splitlines():
            m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
            if m:
                cur = m.group(1)
                calls.setdefault(cur, set())
                continue
            m = re.search(r"R_ARM_THM_(CALL|JUMP24)\s+(\S+)", line)
            if m and cur:
                calls[cur].add((m.group(2), m.group(1) == "JUMP24"))
                continue
            m = re.search(r"\s(bl|b|b\.w)\s+[0-9a-f]+ <([^>+]+)>", line)
            if m and cur and m.group(2) != cur and m.group(2) in frames:
                calls[cur].add((m.group(2), m.group(1) != "bl"))
    memo: dict[str, tuple[int, list[str]]] = {}

    def worst(f: str, seen: tuple[str, ...]) -> tuple[int, list[str]]:
        if f in memo:
            return memo[f]
        own = frames.get(f, 0)
        best, chain = own, [f]
        for g, tail in sorted(calls.get(f, ())):
            if g in seen or g == f:
                continue
            b, c = worst(g, seen + (f,))
            total = b if tail else own + b
            if total > best:
                best, chain = total, [f] + c
        memo[f] = (best, chain)
        return memo[f]

    return {f: worst(f, ()) for f in sorted(frames)
            if f.startswith("edgec_") and f.endswith("_s8") and not f.startswith("edgec_nn_") and "." not in f}


# --- reading .tflite models --------------------------------------------------------------------


@dataclass
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    type: int
    scales: np.ndarray
    zero_points: np.ndarray
    quantized_dimension: int
    data: np.ndarray | None  # constant data, else None

    @property
    def scale(self) -> float:
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0]) if self.zero_points.size else 0


@dataclass
class Layer:
    index: int
    op: str
    inputs: list[int]
    outputs: list[int]
    options: Any = None  # the tflite XxxOptions object, or None
    extra: dict = field(default_factory=dict)


_TYPE_TO_DTYPE = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}

_OPTIONS = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "SOFTMAX": "SoftmaxOptions",
    "ADD": "AddOptions",
    "MUL": "MulOptions",
    "CONCATENATION": "ConcatenationOptions",
    "RESHAPE": "ReshapeOptions",
}


class TfliteModel:
    """The first subgraph of a .tflite file, read with the `tflite` flatbuffer package."""

    def __init__(self, path: Path | None = None, *, data: bytes | None = None):
        import tflite

        self.path = Path(path) if path is not None else None
        self.buf = self.path.read_bytes() if data is None else bytes(data)
        self.model = tflite.Model.GetRootAsModel(self.buf, 0)
        sg = self.model.Subgraphs(0)
        op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.tensors: list[TensorInfo] = []
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            q = t.Quantization()
            scales = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else np.zeros(0, np.float32)
            zps = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else np.zeros(0, np.int64)
            shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            data = None
            b = self.model.Buffers(t.Buffer())
            if b is not None and b.DataLength() > 0:
                data = np.frombuffer(b.DataAsNumpy().tobytes(), dtype=_TYPE_TO_DTYPE[t.Type()]).reshape(shape)
            self.tensors.append(TensorInfo(i, t.Name().decode(), shape, t.Type(), np.asarray(scales, np.float32),
                                           np.asarray(zps, np.int64), q.QuantizedDimension() if q else 0, data))
        self.layers: list[Layer] = []
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
            opts = None
            if name in _OPTIONS and op.BuiltinOptions() is not None:
                opts = getattr(tflite, _OPTIONS[name])()
                tb = op.BuiltinOptions()
                opts.Init(tb.Bytes, tb.Pos)
            self.layers.append(Layer(i, name, [int(v) for v in op.InputsAsNumpy()],
                                     [int(v) for v in op.OutputsAsNumpy()], opts))
        self.inputs = [int(v) for v in sg.InputsAsNumpy()]
        self.outputs = [int(v) for v in sg.OutputsAsNumpy()]

    @classmethod
    def from_bytes(cls, data: bytes) -> "TfliteModel":
        return cls(data=data)


_PADDING = {0: "SAME", 1: "VALID"}


def _act_range(act: int, out: TensorInfo) -> tuple[int, int]:
    return qmath.activation_range(int(act), out.scale, out.zero_point)


def run_layer(lib: KernelLib, model: TfliteModel, layer: Layer, inputs: list[np.ndarray],
              prune: bool = True) -> np.ndarray:
    """Run one TFLite operator with the edgec kernels; `inputs` are the values of
    its non-constant input tensors, in operator order. Returns the output tensor.
    prune: stride-1 pointwise layers with all-zero filters take the pruned kernel,
    as compiled models do (else the plain call, which skips them at run time)."""
    T = model.tensors
    out_t = T[layer.outputs[0]]
    values = []
    it = iter(inputs)
    for idx in layer.inputs:
        if idx < 0:
            values.append(None)
        elif T[idx].data is not None:
            values.append(T[idx].data)
        else:
            values.append(next(it))
    op = layer.op
    o = layer.options

    if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        x, w = values[0], values[1]
        bias = values[2] if len(values) > 2 else None
        in_t, w_t = T[layer.inputs[0]], T[layer.inputs[1]]
        x = x.reshape(in_t.shape)
        sh, sw = o.StrideH(), o.StrideW()
        dh, dw = o.DilationHFactor(), o.DilationWFactor()
        pad = _PADDING[o.Padding()]
        oh, ph, _ = qmath.compute_padding(pad, x.shape[1], w.shape[1], sh, dh)
        ow, pw, _ = qmath.compute_padding(pad, x.shape[2], w.shape[2], sw, dw)
        cout = w.shape[0] if op == "CONV_2D" else w.shape[3]
        mult, shift = qmath.conv_quant_params(in_t.scale, w_t.scales, out_t.scale, cout)
        q = Quant(mult, shift, True)
        lo, hi = _act_range(o.FusedActivationFunction(), out_t)
        common = dict(input_offset=-in_t.zero_point, output_offset=out_t.zero_point, stride=(sh, sw), padding=(ph, pw),
                      dilation=(dh, dw), out_hw=(oh, ow), act_min=lo, act_max=hi)
        if op == "CONV_2D":
            one = w.shape[1] == 1 and w.shape[2] == 1 and ph == 0 and pw == 0 and w.shape[3] == x.shape[3]
            pruned = one and (sh, sw, dh, dw) == (1, 1, 1, 1) and not np.all(np.any(w.reshape(cout, -1) != 0, axis=1))
            if prune and pruned:
                y = lib.convolve_1x1_pruned(x, w, bias, q, input_offset=-in_t.zero_point, output_offset=out_t.zero_point,
                                            act_min=lo, act_max=hi)
            else:
                y = lib.convolve(x, w, bias, q, one_by_one=one and dh == 1 and dw == 1, **common)
        else:
            y = lib.depthwise_conv(x, w, bias, q, depth_multiplier=o.DepthMultiplier() or cout // x.shape[3], **common)
        return y.reshape(out_t.shape)

    if op == "FULLY_CONNECTED":
        x, w = values[0], values[1]
        bias = values[2] if len(values) > 2 else None
        in_t, w_t = T[layer.inputs[0]], T[layer.inputs[1]]
        mult, shift, per_channel = qmath.fc_quant_params(in_t.scale, w_t.scales, out_t.scale)
        lo, hi = _act_range(o.FusedActivationFunction(), out_t)
        y = lib.fully_connected(x.reshape(-1, w.shape[1]), w, bias, Quant(mult, shift, per_channel),
                                input_offset=-in_t.zero_point, output_offset=out_t.zero_point,
                                filter_offset=-w_t.zero_point, act_min=lo, act_max=hi)
        return y.reshape(out_t.shape)

    if op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        x = values[0].reshape(T[layer.inputs[0]].shape)
        fh, fw = o.FilterHeight(), o.FilterWidth()
        sh, sw = o.StrideH(), o.StrideW()
        pad = _PADDING[o.Padding()]
        oh, ph, _ = qmath.compute_padding(pad, x.shape[1], fh, sh)
        ow, pw, _ = qmath.compute_padding(pad, x.shape[2], fw, sw)
        lo, hi = _act_range(o.FusedActivationFunction(), out_t)
        kind = "avg" if op == "AVERAGE_POOL_2D" else "max"
        return lib.pool(kind, x, filter_hw=(fh, fw), stride=(sh, sw), padding=(ph, pw), out_hw=(oh, ow), act_min=lo,
                        act_max=hi).reshape(out_t.shape)

    if op == "SOFTMAX":
        in_t = T[layer.inputs[0]]
        p = qmath.softmax_params(in_t.scale, o.Beta())
        return lib.softmax(values[0].reshape(in_t.shape), p).reshape(out_t.shape)

    if op in ("ADD", "MUL"):
        a_t, b_t = T[layer.inputs[0]], T[layer.inputs[1]]
        a, b = values[0], values[1]
        act = o.FusedActivationFunction() if o is not None else 0
        if op == "ADD":
            p = qmath.add_params(a_t.scale, a_t.zero_point, b_t.scale, b_t.zero_point, out_t.scale,
                                 out_t.zero_point, act)
            y = lib.add(a, b, p)
        else:
            p = qmath.mul_params(a_t.scale, a_t.zero_point, b_t.scale, b_t.zero_point, out_t.scale,
                                 out_t.zero_point, act)
            y = lib.mul(a, b, p)
        return y.reshape(out_t.shape)

    if op == "RESHAPE":
        return np.asarray(values[0]).reshape(out_t.shape)

    if op in ("LOGISTIC", "TANH"):
        in_t = T[layer.inputs[0]]
        p = (qmath.logistic_params if op == "LOGISTIC" else qmath.tanh_params)(in_t.scale, in_t.zero_point)
        return lib.sigmoid_like(op.lower(), values[0], p).reshape(out_t.shape)

    if op in ("PAD", "PADV2"):
        pads = np.asarray(values[1]).reshape(-1, 2)
        value = int(values[2].reshape(-1)[0]) if len(values) > 2 and values[2] is not None else out_t.zero_point
        return lib.pad(values[0].reshape(T[layer.inputs[0]].shape), pads, value)

    if op == "CONCATENATION":
        xs = [v.reshape(T[i].shape) for v, i in zip(values, layer.inputs)]
        return lib.concat(xs, o.Axis())

    raise NotImplementedError(f"no kernel mapping for {op}")


# --- reference runtimes --------------------------------------------------------------------------


def random_input(model: TfliteModel, seed: int) -> np.ndarray:
    t = model.tensors[model.inputs[0]]
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=t.shape, dtype=np.int16).astype(np.int8)


def litert_layer_io(path: Path, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every tensor of one LiteRT run (default int8 kernels, no delegate), by tensor index."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], x.reshape(d["shape"]))
    it.invoke()
    out = {}
    for t in it.get_tensor_details():
        try:
            out[t["index"]] = np.array(it.get_tensor(t["index"]))
        except ValueError:
            pass
    return out


def tflm_layer_io(path: Path, x: np.ndarray, tensor_indices) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Tensors of one TFLite Micro run (reference kernels, all tensors preserved) and its output."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_file(str(path), intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    it.set_input(x, 0)
    it.invoke()
    out = {int(i): np.array(it.GetTensor(int(i), 0)["tensor_data"]) for i in tensor_indices}
    return out, np.array(it.get_output(0))


def tflm_output(path: Path, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_file(str(path))
    it.set_input(x, 0)
    it.invoke()
    return np.array(it.get_output(0))


def run_model(lib: KernelLib, model: TfliteModel, x: np.ndarray) -> np.ndarray:
    """Chain the whole model through the edgec kernels."""
    values: dict[int, np.ndarray] = {model.inputs[0]: x.reshape(model.tensors[model.inputs[0]].shape)}
    for layer in model.layers:
        ins = [values[i] for i in layer.inputs if i >= 0 and model.tensors[i].data is None]
        values[layer.outputs[0]] = run_layer(lib, model, layer, ins)
    return values[model.outputs[0]]


# --- tiny single-operator .tflite models (for ops the MLPerf models do not use) ----------------


@dataclass
class TensorSpec:
    shape: tuple[int, ...]
    scale: float | list[float] = 1.0
    zero_point: int | list[int] = 0
    data: np.ndarray | None = None  # constant data (int8 weights, int32 bias/paddings)
    dtype: str = "int8"
    quantized_dimension: int = 0


@dataclass
class SingleOpCase:
    name: str
    model_bytes: bytes
    inputs: list[np.ndarray]


_TFL_TYPES = {"int8": 9, "int32": 2}


def build_single_op_model(op: str, tensors: list[TensorSpec], op_inputs: list[int], op_outputs: list[int],
                          options: tuple[str, dict] | None = None) -> bytes:
    """A one-operator TFLite flatbuffer, written with the `tflite` package's builders.

    Graph inputs are the operator's non-constant inputs, the graph output its output.
    options: (options table name, {field: value}), e.g. ("Conv2DOptions", {"StrideW": 2}).
    """
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)

    def vec(start, items, prepend):
        start(b, len(items))
        for v in reversed(items):
            prepend(v)
        return b.EndVector()

    # buffers: 0 is the empty sentinel
    buf_offsets = []
    tensor_buffers = []
    for t in tensors:
        if t.data is None:
            tensor_buffers.append(0)
            continue
        raw = np.ascontiguousarray(t.data, dtype=np.dtype(t.dtype)).tobytes()
        data_vec = b.CreateNumpyVector(np.frombuffer(raw, dtype=np.uint8))
        tflite.BufferStart(b)
        tflite.BufferAddData(b, data_vec)
        buf_offsets.append(tflite.BufferEnd(b))
        tensor_buffers.append(len(buf_offsets))
    tflite.BufferStart(b)
    empty = tflite.BufferEnd(b)
    buffers = vec(tflite.ModelStartBuffersVector, [empty] + buf_offsets, b.PrependUOffsetTRelative)

    tensor_offsets = []
    for i, t in enumerate(tensors):
        name = b.CreateString(f"t{i}")
        shape = b.CreateNumpyVector(np.asarray(t.shape, dtype=np.int32))
        scales = np.atleast_1d(np.asarray(t.scale, dtype=np.float32))
        zps = np.atleast_1d(np.asarray(t.zero_point, dtype=np.int64))
        if zps.size == 1 and scales.size > 1:
            zps = np.repeat(zps, scales.size)
        sv = b.CreateNumpyVector(scales)
        zv = b.CreateNumpyVector(zps)
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, sv)
        tflite.QuantizationParametersAddZeroPoint(b, zv)
        tflite.QuantizationParametersAddQuantizedDimension(b, t.quantized_dimension)
        q = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _TFL_TYPES[t.dtype])
        tflite.TensorAddBuffer(b, tensor_buffers[i])
        tflite.TensorAddName(b, name)
        if t.dtype == "int8" or t.data is not None and t.dtype == "int32" and np.any(scales != 1.0):
            tflite.TensorAddQuantization(b, q)
        tensor_offsets.append(tflite.TensorEnd(b))

    opts_type, opts = 0, None
    if options is not None:
        table, fields = options
        getattr(tflite, f"{table}Start")(b)
        for k, v in fields.items():
            getattr(tflite, f"{table}Add{k}")(b, v)
        opts = getattr(tflite, f"{table}End")(b)
        opts_type = getattr(tflite.BuiltinOptions, table)

    ins = b.CreateNumpyVector(np.asarray(op_inputs, dtype=np.int32))
    outs = b.CreateNumpyVector(np.asarray(op_outputs, dtype=np.int32))
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, ins)
    tflite.OperatorAddOutputs(b, outs)
    if opts is not None:
        tflite.OperatorAddBuiltinOptionsType(b, opts_type)
        tflite.OperatorAddBuiltinOptions(b, opts)
    operator = tflite.OperatorEnd(b)

    graph_inputs = [i for i in op_inputs if i >= 0 and tensors[i].data is None]
    tv = vec(tflite.SubGraphStartTensorsVector, tensor_offsets, b.PrependUOffsetTRelative)
    gi = b.CreateNumpyVector(np.asarray(graph_inputs, dtype=np.int32))
    go = b.CreateNumpyVector(np.asarray(op_outputs, dtype=np.int32))
    ov = vec(tflite.SubGraphStartOperatorsVector, [operator], b.PrependUOffsetTRelative)
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tv)
    tflite.SubGraphAddInputs(b, gi)
    tflite.SubGraphAddOutputs(b, go)
    tflite.SubGraphAddOperators(b, ov)
    tflite.SubGraphAddName(b, sg_name)
    subgraph = tflite.SubGraphEnd(b)

    code = getattr(tflite.BuiltinOperator, op)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    tflite.OperatorCodeAddBuiltinCode(b, code)
    tflite.OperatorCodeAddVersion(b, 1)
    opcode = tflite.OperatorCodeEnd(b)

    codes = vec(tflite.ModelStartOperatorCodesVector, [opcode], b.PrependUOffsetTRelative)
    subgraphs = vec(tflite.ModelStartSubgraphsVector, [subgraph], b.PrependUOffsetTRelative)
    desc = b.CreateString("edgec single-op test model")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, buffers)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def run_tflm_bytes(model_bytes: bytes, inputs: list[np.ndarray]) -> np.ndarray:
    """Run a model held in memory with the TFLite Micro interpreter; its first output."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model_bytes, arena_size=1 << 20)
    for i, x in enumerate(inputs):
        it.set_input(x, i)
    it.invoke()
    return np.array(it.get_output(0))


def _scale(rng, lo=-9.0, hi=-2.0) -> float:
    return float(np.float32(2.0 ** rng.uniform(lo, hi)))


def _i8r(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def random_single_op_cases(rng: np.random.Generator) -> list[SingleOpCase]:
    """One randomized tiny model per op/feature: activations, broadcasting, pooling
    with padding, PAD/PADV2, CONCATENATION, dilated/strided conv, depth multiplier > 1,
    per-channel and per-tensor FULLY_CONNECTED."""
    cases: list[SingleOpCase] = []

    def add(name, op, tensors, ins, outs, options=None):
        data = build_single_op_model(op, tensors, ins, outs, options)
        xs = [_i8r(rng, tensors[i].shape) for i in ins if i >= 0 and tensors[i].data is None]
        cases.append(SingleOpCase(name, data, xs))

    s_in, z_in = _scale(rng, -7, 0), int(rng.integers(-128, 128))
    add("logistic", "LOGISTIC", [TensorSpec((1, 256), s_in, z_in), TensorSpec((1, 256), 1 / 256, -128)], [0], [1])
    add("tanh", "TANH", [TensorSpec((1, 256), s_in, z_in), TensorSpec((1, 256), 1 / 128, 0)], [0], [1])
    add("softmax_beta", "SOFTMAX", [TensorSpec((3, 37), _scale(rng, -6, -1), int(rng.integers(-128, 128))),
                                    TensorSpec((3, 37), 1 / 256, -128)], [0], [1],
        ("SoftmaxOptions", {"Beta": float(rng.choice([0.5, 1.0, 2.0]))}))

    shape = (1, 5, 4, 3)
    for op in ("ADD", "MUL"):
        act = int(rng.integers(0, 4))
        qs = [(_scale(rng), int(rng.integers(-128, 128))) for _ in range(3)]
        add(f"{op.lower()}_elementwise", op, [TensorSpec(shape, *qs[0]), TensorSpec(shape, *qs[1]),
                                              TensorSpec(shape, *qs[2])], [0, 1], [2],
            (f"{op.capitalize()}Options", {"FusedActivationFunction": act}))
        add(f"{op.lower()}_scalar", op, [TensorSpec(shape, *qs[0]), TensorSpec((1,), *qs[1]),
                                         TensorSpec(shape, *qs[2])], [0, 1], [2],
            (f"{op.capitalize()}Options", {"FusedActivationFunction": act}))

    for op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        q = (_scale(rng), int(rng.integers(-128, 128)))
        fh, fw, sh, sw = (int(v) for v in rng.integers(1, 4, size=4))
        h, w = 7, 6
        pad = int(rng.integers(0, 2))
        oh = Q_out(h, fh, sh, pad)
        ow = Q_out(w, fw, sw, pad)
        add(op.lower(), op, [TensorSpec((1, h, w, 5), *q), TensorSpec((1, oh, ow, 5), *q)], [0], [1],
            ("Pool2DOptions", {"Padding": pad, "StrideW": sw, "StrideH": sh, "FilterWidth": fw, "FilterHeight": fh,
                               "FusedActivationFunction": int(rng.choice([0, 1, 3]))}))

    q = (_scale(rng), int(rng.integers(-128, 128)))
    pads = rng.integers(0, 3, size=(4, 2)).astype(np.int32)
    out_shape = tuple(int(d + a + b) for d, (a, b) in zip((1, 3, 4, 2), pads))
    add("pad", "PAD", [TensorSpec((1, 3, 4, 2), *q), TensorSpec((4, 2), data=pads, dtype="int32"),
                       TensorSpec(out_shape, *q)], [0, 1], [2])
    value = np.array([int(rng.integers(-128, 128))], dtype=np.int8)
    add("padv2", "PADV2", [TensorSpec((1, 3, 4, 2), *q), TensorSpec((4, 2), data=pads, dtype="int32"),
                           TensorSpec((1,), *q, data=value), TensorSpec(out_shape, *q)], [0, 1, 2], [3])
    axis = int(rng.integers(0, 4))
    a_shape, b_shape = [1, 3, 4, 2], [1, 3, 4, 2]
    b_shape[axis] += 2
    o_shape = list(a_shape)
    o_shape[axis] += b_shape[axis]
    add("concat", "CONCATENATION", [TensorSpec(tuple(a_shape), *q), TensorSpec(tuple(b_shape), *q),
                                    TensorSpec(tuple(o_shape), *q)], [0, 1], [2],
        ("ConcatenationOptions", {"Axis": axis}))

    # dilated, strided conv with per-channel weights
    s_i, z_i, s_o, z_o = _scale(rng, -6, -3), int(rng.integers(-128, 128)), _scale(rng, -5, -2), int(rng.integers(-128, 128))
    cin, cout = 3, 4
    ws = [float(np.float32(v)) for v in 2.0 ** rng.uniform(-8, -5, size=cout)]
    wdat = _i8r(rng, (cout, 3, 3, cin))
    bdat = rng.integers(-3000, 3000, size=cout).astype(np.int32)
    oh = Q_out(9, 3, 2, 0, 2)
    ow = Q_out(8, 3, 2, 0, 2)
    add("conv_dilated", "CONV_2D", [TensorSpec((1, 9, 8, cin), s_i, z_i), TensorSpec((cout, 3, 3, cin), ws, 0, wdat),
                                    TensorSpec((cout,), [s_i * v for v in ws], 0, bdat, "int32"),
                                    TensorSpec((1, oh, ow, cout), s_o, z_o)], [0, 1, 2], [3],
        ("Conv2DOptions", {"Padding": 0, "StrideW": 2, "StrideH": 2, "DilationWFactor": 2, "DilationHFactor": 2,
                           "FusedActivationFunction": 3}))
    # depthwise with depth multiplier 2
    dm, cin = 2, 3
    cout = cin * dm
    ws = [float(np.float32(v)) for v in 2.0 ** rng.uniform(-8, -5, size=cout)]
    wdat = _i8r(rng, (1, 3, 3, cout))
    bdat = rng.integers(-3000, 3000, size=cout).astype(np.int32)
    add("depthwise_dm2", "DEPTHWISE_CONV_2D",
        [TensorSpec((1, 6, 7, cin), s_i, z_i), TensorSpec((1, 3, 3, cout), ws, 0, wdat, quantized_dimension=3),
         TensorSpec((cout,), [s_i * v for v in ws], 0, bdat, "int32"), TensorSpec((1, 6, 7, cout), s_o, z_o)],
        [0, 1, 2], [3], ("DepthwiseConv2DOptions", {"Padding": 0, "StrideW": 1, "StrideH": 1, "DepthMultiplier": dm,
                                                    "DilationWFactor": 1, "DilationHFactor": 1,
                                                    "FusedActivationFunction": 1}))
    # fully connected, per-tensor and per-channel
    k, n = 19, 6
    for per_channel in (False, True):
        ws = [float(np.float32(v)) for v in 2.0 ** rng.uniform(-8, -5, size=n if per_channel else 1)]
        wdat = _i8r(rng, (n, k))
        bs = [s_i * v for v in ws] if per_channel else s_i * ws[0]
        bdat = rng.integers(-3000, 3000, size=n).astype(np.int32)
        add(f"fc_{'per_channel' if per_channel else 'per_tensor'}", "FULLY_CONNECTED",
            [TensorSpec((2, k), s_i, z_i), TensorSpec((n, k), ws if per_channel else ws[0], 0, wdat),
             TensorSpec((n,), bs, 0, bdat, "int32"), TensorSpec((2, n), s_o, z_o)], [0, 1, 2], [3],
            ("FullyConnectedOptions", {"FusedActivationFunction": 0}))
    return cases


def Q_out(size: int, k: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output size for TFLite padding enum (0 = SAME, 1 = VALID)."""
    return qmath.compute_padding("SAME" if padding == 0 else "VALID", size, k, stride, dilation)[0]
