"""Run the ONNX backend node tests through edgec's generated C.

    python -m edgec.nodetests [-k SUBSTRING] [--op Conv] [-j JOBS] [-v]

Every node test (one small model, its inputs and expected outputs) whose ops
are all known to edgec is compiled for the host with
`compile_model(model, "host", build=False)`, the generated C is built into a
shared library and run through ctypes (`edgec.hostrun`), and the outputs are
compared with the expected ones. A test counts as

* passed      - edgec compiled it and every output matches;
* unsupported - edgec rejected the model with `UnsupportedOpsError` or a
                `ModelError` about an unsupported feature (non-float32 runtime
                tensors, optional/sequence types, ...); reported as a skip,
                with edgec's reason;
* known bug   - listed in `KNOWN_FAILURES` (a bug outside the op bundles that
                is reported but not fixed yet); an expected failure;
* failed      - anything else: wrong numbers, or edgec crashed / raised an
                error that is not about an unsupported feature.

Where the tests come from. The onnx package used to ship the generated test
data (`onnx/backend/test/data/node/<test>/model.onnx` and
`test_data_set_*/{input,output}_*.pb`); when that folder exists it is used.
Recent onnx wheels no longer ship it, so otherwise the very same cases are
generated in memory by the generator that writes that folder
(`onnx.backend.test.case.node.collect_testcases()`, seed 0; ~9 s).

Static inputs. edgec needs the inputs an op reads at compile time (Reshape's
shape, Slice's starts/ends/axes/steps, Pad's pads, Resize's scales/sizes,
Clip's min/max, ReduceMean's axes, ...; `OpDef.static_inputs`) to be
constants. The node tests feed them as graph inputs, so before compiling, every
graph input that (directly or through other foldable nodes) feeds a static
input is baked into the model as an initializer holding the test's value for
it, and removed from the graph inputs. The remaining inputs are fed at run
time. Test data sets with different values for the baked inputs are compiled
separately. Inputs whose declared shape is dynamic get `--input-shape` from
the test data.

Besides the ONNX tests themselves: tests of LayerNormalization / MaxPool /
Dropout that ask for optional outputs edgec does not produce (statistics,
indices, masks) are also run with only their first output (`<test>__y_only`),
and `extra_cases()` adds small edgec models (`edgec_*`) for what the ONNX
tests leave out (older opsets, float Pad modes, padding / ceil-mode pooling,
fused epilogues, BN folding, ...), checked against onnxruntime.

Tolerances: rtol 1e-4 / atol 1e-5; exact equality when every op in the model
only moves or selects data (`EXACT_OPS`); `TOLERANCE_OVERRIDES` for tests
whose expected values are hand-rounded.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

# ---- test cases ------------------------------------------------------------------

# Ops whose results must match bit for bit (data movement, comparisons, exact
# float operations): compared with atol = rtol = 0.
EXACT_OPS = frozenset({
    "Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat",
    "Slice", "Pad", "Relu", "Clip", "MaxPool", "Constant", "Shape", "Size",
})
RTOL = 1e-4
ATOL = 1e-5

# Tests whose expected values are hand-written and rounded: their own precision.
TOLERANCE_OVERRIDES: dict[str, tuple[float, float]] = {
    # y is written with 4 decimals (0.1511 for 1.3595 / 9 = 0.151055...)
    "test_averagepool_2d_ceil_last_window_starts_on_pad": (1e-3, 1e-4),
}

# Node tests that fail because of a bug outside the op bundles (frontend,
# lowering, codegen, ...): name -> description. They run as expected failures
# (strict: a test listed here that passes is reported, so the entry is removed).
KNOWN_FAILURES: dict[str, str] = {}


@dataclass
class NodeCase:
    name: str
    model: onnx.ModelProto
    data_sets: list[tuple[list[np.ndarray], list[np.ndarray]]]
    origin: str = "onnx"  # "onnx" | "derived" (an ONNX test, optional outputs dropped) | "extra" (edgec's own)

    @property
    def ops(self) -> list[str]:
        return sorted({n.op_type for n in self.model.graph.node})


def shipped_node_dir() -> Path:
    """The node test data folder: $EDGEC_ONNX_NODE_DIR (e.g. onnx/backend/test/data/node
    of an onnx source checkout), else the one inside the installed onnx package."""
    env = os.environ.get("EDGEC_ONNX_NODE_DIR")
    if env:
        return Path(env)
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"


def _read_pb(path: Path, vi: onnx.ValueInfoProto | None) -> np.ndarray | None:
    if vi is not None and not vi.type.HasField("tensor_type"):
        return None  # a sequence / map / optional: edgec has no such types
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def _load_dir(d: Path) -> NodeCase:
    model = onnx.load(str(d / "model.onnx"))
    sets = []

    def read(ds: Path, kind: str, infos) -> list:
        files = sorted(ds.glob(f"{kind}_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        return [_read_pb(p, infos[k] if k < len(infos) else None) for k, p in enumerate(files)]

    for ds in sorted(d.glob("test_data_set_*"), key=lambda p: int(p.name.rsplit("_", 1)[1])):
        sets.append((read(ds, "input", model.graph.input), read(ds, "output", model.graph.output)))
    return NodeCase(d.name, model, sets)


def _edgec_ops() -> frozenset[str]:
    from edgec.ops.registry import all_ops

    return frozenset(d.op for d in all_ops() if d.domain == "") | {"Constant"}


def _model_ops(model: onnx.ModelProto) -> set[tuple[str, str]]:
    return {(n.domain if n.domain != "ai.onnx" else "", n.op_type) for n in model.graph.node}


def _relevant(model: onnx.ModelProto, known: frozenset[str]) -> bool:
    ops = _model_ops(model)
    return bool(ops) and all(dom == "" and op in known for dom, op in ops)


@lru_cache(maxsize=1)
def _generated_cases() -> tuple:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return tuple(cases)


def _as_array(x) -> np.ndarray | None:
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, onnx.TensorProto):
        return numpy_helper.to_array(x)
    if isinstance(x, (np.generic, int, float, bool)):
        return np.asarray(x)
    return None  # sequences, maps, optionals: edgec has no such types


@lru_cache(maxsize=1)
def onnx_node_cases() -> tuple[NodeCase, ...]:
    """The ONNX node tests whose ops are all in edgec's registry (pre-filtered by op type)."""
    known = _edgec_ops()
    out = []
    d = shipped_node_dir()
    if d.is_dir() and any(d.iterdir()):
        for sub in sorted(d.iterdir()):
            if not (sub / "model.onnx").is_file():
                continue
            m = onnx.load(str(sub / "model.onnx"), load_external_data=False)
            if _relevant(m, known):
                out.append(_load_dir(sub))
        return tuple(out)
    for c in _generated_cases():
        if c.kind != "node" or c.model is None or not _relevant(c.model, known):
            continue
        sets = []
        for ins, outs in c.data_sets or ():
            sets.append(([_as_array(x) for x in ins], [_as_array(x) for x in outs]))
        out.append(NodeCase(c.name, c.model, sets))
    return tuple(sorted(out, key=lambda c: c.name))


# Optional trailing outputs edgec does not produce (training statistics,
# indices, masks). ONNX node tests of these ops that ask for them are skipped
# as unsupported, and additionally run once more with those outputs dropped
# ("<test>__y_only"): the same model and data, checking the first output.
_TRIMMABLE_OUTPUTS = {"LayerNormalization", "MaxPool", "Dropout"}


def _first_output_only(case: NodeCase) -> NodeCase | None:
    g = case.model.graph
    if len(g.node) != 1 or g.node[0].op_type not in _TRIMMABLE_OUTPUTS:
        return None
    if len([o for o in g.node[0].output if o]) < 2 or len(g.output) < 2 or g.output[0].name != g.node[0].output[0]:
        return None
    m = onnx.ModelProto()
    m.CopyFrom(case.model)
    del m.graph.node[0].output[1:]
    del m.graph.output[1:]
    m.graph.name = case.name + "__y_only"
    sets = [(ins, outs[:1]) for ins, outs in case.data_sets]
    return NodeCase(case.name + "__y_only", m, sets, "derived")


@lru_cache(maxsize=1)
def node_cases() -> tuple[NodeCase, ...]:
    """Every case run: the relevant ONNX node tests, their first-output-only
    variants, and edgec's extra cases (`edgec.nodetests_extra`)."""
    base = list(onnx_node_cases())
    derived = [d for c in base if (d := _first_output_only(c)) is not None]
    return tuple(base + derived + list(extra_cases()))


# ---- edgec's extra cases -----------------------------------------------------------
# The ONNX node tests exercise each op at its newest opset, mostly without
# padding / ceil-mode / epilogue combinations, and several float paths only
# with integer data (Pad edge/reflect). These small models fill the gaps; the
# expected outputs come from onnxruntime (an implementation independent of
# edgec's references and of onnx.reference).

def _x(*shape: int) -> tuple[int, ...]:
    return shape


def _extra_specs() -> list[tuple[str, int, list, dict, dict]]:
    """(name, opset, nodes, runtime inputs {name: shape}, initializers {name: array})."""
    from onnx import helper as h

    i64 = lambda *v: np.asarray(v, np.int64)  # noqa: E731
    f32 = lambda *v: np.asarray(v, np.float32)  # noqa: E731
    rng = np.random.default_rng(1234)
    w = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    N = h.make_node
    specs = [
        # Slice: opset 11, negative steps, huge ends, default axes
        ("slice_opset11_neg_step", 11, [N("Slice", ["x", "s", "e", "a", "t"], ["y"])], {"x": _x(4, 6, 5)},
         {"s": i64(-1, 4), "e": i64(-(2 ** 63), 0), "a": i64(1, 2), "t": i64(-2, -1)}),
        ("slice_opset11_default_axes", 11, [N("Slice", ["x", "s", "e"], ["y"])], {"x": _x(4, 6)},
         {"s": i64(1, -4), "e": i64(2 ** 62, -1)}),
        ("slice_steps_3axes", 13, [N("Slice", ["x", "s", "e", "a", "t"], ["y"])], {"x": _x(2, 7, 9)},
         {"s": i64(0, 1, 8), "e": i64(2, 7, -100), "a": i64(0, -2, -1), "t": i64(1, 3, -4)}),
        # Pad: opset 11 modes (float data), opset 18 axes, opset 19 wrap, negative pads
        ("pad_opset11_constant", 11, [N("Pad", ["x", "p", "v"], ["y"], mode="constant")], {"x": _x(1, 2, 3, 4)},
         {"p": i64(0, 0, 1, 2, 0, 0, 2, 1), "v": f32(-2.5).reshape(())}),
        ("pad_opset11_reflect", 11, [N("Pad", ["x", "p"], ["y"], mode="reflect")], {"x": _x(1, 2, 3, 4)},
         {"p": i64(0, 0, 2, 3, 0, 0, 1, 2)}),
        ("pad_opset11_edge", 11, [N("Pad", ["x", "p"], ["y"], mode="edge")], {"x": _x(1, 2, 3, 4)},
         {"p": i64(0, 1, 2, 3, 0, 0, 4, 1)}),
        ("pad_opset18_axes_reflect", 18, [N("Pad", ["x", "p", "", "a"], ["y"], mode="reflect")], {"x": _x(2, 3, 5)},
         {"p": i64(1, 4, 2, 0), "a": i64(1, -1)}),
        ("pad_opset19_wrap", 19, [N("Pad", ["x", "p"], ["y"], mode="wrap")], {"x": _x(1, 3, 4)},
         {"p": i64(0, 2, 3, 0, 1, 4)}),
        ("pad_negative_constant", 13, [N("Pad", ["x", "p"], ["y"])], {"x": _x(1, 3, 5, 6)},
         {"p": i64(0, 0, -1, 2, 0, 0, 1, -3)}),
        # Resize: opset 11 / 13 input conventions, N-linear, nearest modes, NHWC-style axes
        ("resize_opset11_nearest_scales", 11, [N("Resize", ["x", "roi", "sc"], ["y"], mode="nearest")],
         {"x": _x(1, 2, 3, 4)}, {"roi": np.zeros(0, np.float32), "sc": f32(1, 1, 2, 1.5)}),
        ("resize_opset11_linear_sizes", 11, [N("Resize", ["x", "roi", "sc", "sz"], ["y"], mode="linear")],
         {"x": _x(1, 2, 5, 4)}, {"roi": np.zeros(0, np.float32), "sc": np.zeros(0, np.float32), "sz": i64(1, 2, 8, 3)}),
        ("resize_linear_asymmetric_down", 13, [N("Resize", ["x", "", "sc"], ["y"], mode="linear",
                                                  coordinate_transformation_mode="asymmetric")],
         {"x": _x(1, 3, 8, 6)}, {"sc": f32(1, 1, 0.5, 0.5)}),
        ("resize_linear_align_corners_sizes", 13, [N("Resize", ["x", "", "", "sz"], ["y"], mode="linear",
                                                      coordinate_transformation_mode="align_corners")],
         {"x": _x(1, 2, 4, 5)}, {"sz": i64(1, 2, 7, 1)}),
        ("resize_linear_3d", 13, [N("Resize", ["x", "", "sc"], ["y"], mode="linear")],
         {"x": _x(2, 5, 4)}, {"sc": f32(1, 1.6, 2)}),
        ("resize_nearest_nhwc", 13, [N("Resize", ["x", "", "sc"], ["y"], mode="nearest",
                                        coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
         {"x": _x(1, 3, 4, 2)}, {"sc": f32(1, 2, 3, 1)}),
        ("resize_nearest_half_pixel_ceil_down", 13, [N("Resize", ["x", "", "", "sz"], ["y"], mode="nearest",
                                                        nearest_mode="ceil")],
         {"x": _x(1, 1, 9, 7)}, {"sz": i64(1, 1, 4, 3)}),
        ("resize_nearest_pytorch_half_pixel", 13, [N("Resize", ["x", "", "", "sz"], ["y"], mode="nearest",
                                                      coordinate_transformation_mode="pytorch_half_pixel")],
         {"x": _x(1, 2, 5, 6)}, {"sz": i64(1, 2, 1, 9)}),
        # Pooling: ceil mode with padding, count_include_pad, SAME_LOWER
        ("avgpool_ceil_pads_count_include_pad", 11, [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                                      pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)],
         {"x": _x(1, 2, 6, 7)}, {}),
        ("avgpool_ceil_pads", 11, [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 2],
                                     pads=[1, 0, 0, 1], ceil_mode=1)], {"x": _x(1, 2, 6, 7)}, {}),
        ("avgpool_same_lower_count_include_pad", 11, [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 3], strides=[1, 2],
                                                       auto_pad="SAME_LOWER", count_include_pad=1)],
         {"x": _x(1, 2, 5, 6)}, {}),
        ("maxpool_ceil_pads_dilations", 12, [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2],
                                               pads=[1, 0, 1, 1], dilations=[2, 1], ceil_mode=1)],
         {"x": _x(1, 2, 7, 6)}, {}),
        ("maxpool_1d_same_upper", 11, [N("MaxPool", ["x"], ["y"], kernel_shape=[3], strides=[2], auto_pad="SAME_UPPER")],
         {"x": _x(2, 3, 9)}, {}),
        ("avgpool_1d_pads", 11, [N("AveragePool", ["x"], ["y"], kernel_shape=[4], strides=[3], pads=[2, 1])],
         {"x": _x(1, 3, 10)}, {}),
        ("globalavgpool_1d", 11, [N("GlobalAveragePool", ["x"], ["y"])], {"x": _x(2, 3, 7)}, {}),
        # Conv family: groups, dilations, SAME_LOWER, 1-D; epilogues and BN folding
        ("conv_depthwise_same_lower_relu", 11, [N("Conv", ["x", "w", "b"], ["c"], group=4, auto_pad="SAME_LOWER",
                                                  strides=[2, 1], dilations=[1, 2]), N("Relu", ["c"], ["y"])],
         {"x": _x(1, 4, 7, 8)}, {"w": w(4, 1, 3, 2), "b": w(4)}),
        ("conv1d_pads_strides_clip", 11, [N("Conv", ["x", "w"], ["c"], pads=[2, 1], strides=[2]),
                                          N("Clip", ["c", "lo", "hi"], ["y"])],
         {"x": _x(2, 3, 11)}, {"w": w(5, 3, 4), "lo": f32(0).reshape(()), "hi": f32(6).reshape(())}),
        ("conv_bn_fold_hardswish", 14, [N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                                        N("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"], epsilon=1e-3),
                                        N("HardSwish", ["bn"], ["y"])],
         {"x": _x(1, 3, 6, 6)}, {"w": w(4, 3, 3, 3), "g": w(4), "be": w(4), "m": w(4),
                                 "v": np.abs(w(4)) + 0.5}),
        ("convtranspose_group_output_padding", 11, [N("ConvTranspose", ["x", "w", "b"], ["y"], group=2, strides=[2, 3],
                                                      pads=[1, 0, 0, 1], output_padding=[1, 2])],
         {"x": _x(1, 4, 3, 4)}, {"w": w(4, 3, 3, 3), "b": w(6)}),
        ("convtranspose_output_shape_odd", 11, [N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], output_shape=[8, 6])],
         {"x": _x(1, 2, 4, 3)}, {"w": w(2, 3, 3, 3)}),
        ("convtranspose_1d_bn_fold", 15, [N("ConvTranspose", ["x", "w"], ["c"], strides=[2], dilations=[2]),
                                          N("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"])],
         {"x": _x(1, 3, 5)}, {"w": w(3, 2, 3), "g": w(2), "be": w(2), "m": w(2), "v": np.abs(w(2)) + 0.5}),
        ("gemm_bn_fold_leakyrelu", 15, [N("Gemm", ["x", "w", "b"], ["c"], transB=1),
                                        N("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"]),
                                        N("LeakyRelu", ["bn"], ["y"], alpha=0.1)],
         {"x": _x(3, 5)}, {"w": w(4, 5), "b": w(4), "g": w(4), "be": w(4), "m": w(4), "v": np.abs(w(4)) + 0.5}),
        ("gemm_trans_alpha_beta_col_bias", 11, [N("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, alpha=0.5, beta=-2.0)],
         {"a": _x(4, 3), "b": _x(5, 4)}, {"c": w(3, 1)}),
        ("matmul_batched_bcast_sigmoid", 13, [N("MatMul", ["a", "b"], ["c"]), N("Sigmoid", ["c"], ["y"])],
         {"a": _x(2, 3, 4, 5)}, {"b": w(5, 6)}),
        ("add_mul_div_sub_bcast", 14, [N("Add", ["a", "c1"], ["t1"]), N("Mul", ["t1", "b"], ["t2"]),
                                       N("Div", ["t2", "c2"], ["t3"]), N("Sub", ["c3", "t3"], ["y"])],
         {"a": _x(2, 3, 4), "b": _x(3, 1)}, {"c1": w(4), "c2": np.abs(w(1, 3, 1)) + 0.5, "c3": w(1)}),
        ("tanh_hardsigmoid", 13, [N("Tanh", ["x"], ["t"]), N("HardSigmoid", ["t"], ["y"], alpha=0.3, beta=0.4)],
         {"x": _x(3, 4)}, {}),
        # Normalization
        ("softmax_opset11_axis1_3d", 11, [N("Softmax", ["x"], ["y"], axis=1)], {"x": _x(2, 3, 4)}, {}),
        ("softmax_opset11_default_4d", 11, [N("Softmax", ["x"], ["y"])], {"x": _x(2, 3, 2, 2)}, {}),
        ("softmax_opset13_axis1_4d", 13, [N("Softmax", ["x"], ["y"], axis=1)], {"x": _x(2, 3, 2, 2)}, {}),
        ("layernorm_no_bias_axis1", 17, [N("LayerNormalization", ["x", "g"], ["y"], axis=1, epsilon=1e-3)],
         {"x": _x(2, 3, 4)}, {"g": w(3, 4)}),
        ("layernorm_bias_last_axis", 17, [N("LayerNormalization", ["x", "g", "b"], ["y"])],
         {"x": _x(2, 5, 8)}, {"g": w(8), "b": w(8)}),
        ("batchnorm_2d_input", 15, [N("BatchNormalization", ["x", "g", "be", "m", "v"], ["y"], epsilon=1e-2)],
         {"x": _x(4, 3)}, {"g": w(3), "be": w(3), "m": w(3), "v": np.abs(w(3)) + 0.1}),
        ("batchnorm_3d_input", 15, [N("BatchNormalization", ["x", "g", "be", "m", "v"], ["y"])],
         {"x": _x(2, 3, 5)}, {"g": w(3), "be": w(3), "m": w(3), "v": np.abs(w(3)) + 0.1}),
        ("reducemean_opset11_axes_attr", 11, [N("ReduceMean", ["x"], ["y"], axes=[-1, 1], keepdims=0)],
         {"x": _x(2, 3, 4, 5)}, {}),
        ("reducemean_all_keepdims", 11, [N("ReduceMean", ["x"], ["y"])], {"x": _x(2, 3, 4)}, {}),
        ("reducemean_opset18_noop_empty_axes", 18, [N("ReduceMean", ["x", "a"], ["y"], noop_with_empty_axes=1)],
         {"x": _x(2, 3)}, {"a": np.zeros(0, np.int64)}),
        # Shapes
        ("squeeze_unsqueeze_opset11_attrs", 11, [N("Squeeze", ["x"], ["s"], axes=[1, -1]),
                                                N("Unsqueeze", ["s"], ["u"], axes=[0, -1]), N("Relu", ["u"], ["y"])],
         {"x": _x(3, 1, 4, 1)}, {}),
        ("squeeze_all_ones", 13, [N("Squeeze", ["x"], ["s"]), N("Relu", ["s"], ["y"])], {"x": _x(1, 3, 1, 4)}, {}),
        ("flatten_axis0_transpose", 13, [N("Flatten", ["x"], ["f"], axis=0), N("Transpose", ["f"], ["y"])],
         {"x": _x(2, 3, 4)}, {}),
        ("reshape_shape_chain_concat", 13, [N("Shape", ["x"], ["s"]), N("Slice", ["s", "z", "one"], ["s0"]),
                                            N("Concat", ["s0", "m1"], ["ns"], axis=0), N("Reshape", ["x", "ns"], ["r"]),
                                            N("Concat", ["r", "c"], ["y"], axis=1)],
         {"x": _x(2, 3, 4)}, {"z": i64(0), "one": i64(1), "m1": i64(-1), "c": w(2, 5)}),
        ("identity_input_to_output", 13, [N("Identity", ["x"], ["y"])], {"x": _x(2, 3)}, {}),
        ("dropout_opset11_ratio_attr", 11, [N("Dropout", ["x"], ["d"], ratio=0.3), N("Relu", ["d"], ["y"])],
         {"x": _x(2, 3)}, {}),
        ("dropout_opset13_training_false", 13, [N("Dropout", ["x", "r", "t"], ["y"])],
         {"x": _x(2, 3)}, {"r": f32(0.4).reshape(()), "t": np.asarray(False)}),
        # A small chain of the data-movement ops
        ("slice_pad_resize_chain", 13, [N("Slice", ["x", "s", "e", "a"], ["sl"]), N("Pad", ["sl", "p"], ["pd"], mode="edge"),
                                        N("Resize", ["pd", "", "sc"], ["y"], mode="linear")],
         {"x": _x(1, 2, 6, 6)}, {"s": i64(1, 1), "e": i64(5, 6), "a": i64(2, 3), "p": i64(0, 0, 1, 0, 0, 0, 0, 1),
                                 "sc": f32(1, 1, 2, 2)}),
    ]
    return specs


def _ort_outputs(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 4
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        return [np.asarray(v) for v in sess.run(None, feed)]
    except Exception:  # noqa: BLE001 - an op/opset onnxruntime lacks: the ONNX reference instead
        from onnx.reference import ReferenceEvaluator

        return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feed)]


@lru_cache(maxsize=1)
def extra_cases() -> tuple[NodeCase, ...]:
    from onnx import helper as h

    out = []
    for name, opset, nodes, inputs, inits in _extra_specs():
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little"))
        feed = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in inputs.items()}
        graph = h.make_graph(
            nodes, f"edgec_{name}",
            [h.make_tensor_value_info(k, onnx.TensorProto.FLOAT, v.shape) for k, v in feed.items()],
            [h.make_tensor_value_info(nodes[-1].output[0], onnx.TensorProto.FLOAT, None)],
            [numpy_helper.from_array(v, k) for k, v in inits.items()],
        )
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
        model.ir_version = h.find_min_ir_version_for(list(model.opset_import))  # onnxruntime lags behind onnx
        expected = _ort_outputs(model, feed)
        del model.graph.output[:]
        model.graph.output.append(h.make_tensor_value_info(
            nodes[-1].output[0], h.np_dtype_to_tensor_dtype(expected[0].dtype), expected[0].shape))
        out.append(NodeCase(f"edgec_{name}", model, [(list(feed.values()), expected)], "extra"))
    return tuple(out)


def case_names(ops: Iterable[str] | None = None, origin: str | None = None) -> list[str]:
    sel = set(ops) if ops is not None else None
    return [c.name for c in node_cases()
            if (sel is None or sel & set(c.ops)) and (origin is None or c.origin == origin)]


def get_case(name: str) -> NodeCase:
    for c in node_cases():
        if c.name == name:
            return c
    raise KeyError(name)


# ---- static inputs ------------------------------------------------------------------

def static_tensors(model: onnx.ModelProto) -> set[str]:
    """Tensors whose values edgec needs at compile time: the static inputs of
    every node, and (transitively) everything they are computed from."""
    from edgec.ops.registry import lookup

    need: set[str] = set()
    for n in model.graph.node:
        d = lookup(n.op_type, n.domain)
        if d is None:
            continue
        for i in d.static_inputs:
            if i < len(n.input) and n.input[i]:
                need.add(n.input[i])
    changed = True
    while changed:
        changed = False
        for n in model.graph.node:
            if any(o in need for o in n.output if o):
                for i in n.input:
                    if i and i not in need:
                        need.add(i)
                        changed = True
    return need


def bake_static_inputs(model: onnx.ModelProto, inputs: Sequence[np.ndarray | None]) -> tuple[onnx.ModelProto, list[int]]:
    """A copy of `model` in which graph inputs feeding static inputs are
    initializers with the given values. Returns (model, indices of the graph
    inputs still fed at run time)."""
    need = static_tensors(model)
    graph_inputs = list(model.graph.input)
    baked = [k for k, vi in enumerate(graph_inputs) if vi.name in need and k < len(inputs) and inputs[k] is not None]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if not baked:
        return m, list(range(len(graph_inputs)))
    del m.graph.input[:]
    keep = []
    for k, vi in enumerate(graph_inputs):
        if k in baked:
            m.graph.initializer.append(numpy_helper.from_array(np.asarray(inputs[k]), vi.name))
        else:
            m.graph.input.append(vi)
            keep.append(k)
    return m, keep


# ---- running -------------------------------------------------------------------

@dataclass
class CaseResult:
    name: str
    ops: list[str]
    status: str  # "passed" | "failed" | "unsupported" | "known"
    reason: str = ""
    origin: str = "onnx"
    seconds: float = 0.0
    max_abs: float = 0.0
    details: list[str] = field(default_factory=list)


# ModelError messages that mean "edgec does not support this" (not a bug).
_UNSUPPORTED_MODEL_ERRORS = (
    "is not a tensor",                  # sequence / optional / map inputs
    "has dtype",                        # non-float32 tensors
    "not supported",
    "unsupported",
    "must be a constant",               # a static input computed at run time
    "outside the supported range",      # opset
    "dimensions must be positive",      # zero-size inputs
)


def _unsupported_reason(exc: Exception) -> str | None:
    from edgec.errors import ModelError, UnsupportedOpsError

    if isinstance(exc, UnsupportedOpsError):
        return "; ".join(f"{op}: {why}" for _, op, _, _, why in exc.nodes)
    if isinstance(exc, ModelError):
        msg = str(exc)
        if any(p in msg for p in _UNSUPPORTED_MODEL_ERRORS):
            return msg
    return None


def _tolerances(name: str, ops: Iterable[str]) -> tuple[float, float]:
    if name in TOLERANCE_OVERRIDES:
        return TOLERANCE_OVERRIDES[name]
    return (0.0, 0.0) if set(ops) <= EXACT_OPS else (RTOL, ATOL)


def _compare(name: str, got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> tuple[str | None, float]:
    want = np.asarray(want)
    if tuple(got.shape) != tuple(want.shape):
        return f"{name}: shape {tuple(got.shape)} != expected {tuple(want.shape)}", float("inf")
    if want.dtype.kind not in "fc":
        w = want.astype(np.float64)
    else:
        w = want.astype(np.float64)
    g = got.astype(np.float64)
    if w.size == 0:
        return None, 0.0
    both_nan = np.isnan(g) & np.isnan(w)
    d = np.where(both_nan, 0.0, np.abs(g - w))
    d = np.where(np.isinf(w) & (g == w), 0.0, d)
    bad = ~(d <= atol + rtol * np.abs(w))
    maxabs = float(np.nanmax(np.where(np.isnan(d), np.inf, d)))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return (f"{name}: {int(bad.sum())}/{w.size} elements differ (max abs err {maxabs:.3g}, "
                f"first at {idx}: got {g[idx]!r}, expected {w[idx]!r}; rtol={rtol}, atol={atol})"), maxabs
    return None, maxabs


def _dynamic_input_shapes(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """--input-shape for graph inputs whose declared shape is not fully static."""
    shapes = {}
    for vi in model.graph.input:
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or vi.name not in feed:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if not tt.HasField("shape") or any(d is None or d <= 0 for d in dims):
            shapes[vi.name] = tuple(int(d) for d in np.shape(feed[vi.name]))
    return shapes


def _compile(model: onnx.ModelProto, workdir: Path, tag: str, input_shapes: dict):
    from edgec.compiler import compile_model

    path = workdir / f"{tag}.onnx"
    onnx.save(model, str(path))
    return compile_model(path, "host", build=False, input_shapes=input_shapes or None)


def run_case(case: NodeCase) -> CaseResult:
    """Compile and run one node test; never raises (failures are results)."""
    t0 = time.perf_counter()
    res = CaseResult(case.name, case.ops, "passed", origin=case.origin)
    try:
        _run_case(case, res)
    except Exception as e:  # noqa: BLE001 - an edgec crash is a failed test
        why = _unsupported_reason(e)
        if why is not None:
            res.status, res.reason = "unsupported", why
        else:
            res.status = "failed"
            res.reason = f"{type(e).__name__}: {' '.join(str(e).split())[:600]}"
    res.seconds = time.perf_counter() - t0
    if case.name in KNOWN_FAILURES:
        if res.status == "failed":
            res.status = "known"
            res.reason = f"known bug: {KNOWN_FAILURES[case.name]} ({res.reason})"
        else:  # fixed (passes, or is now rejected as unsupported): the entry must go
            res.status, was = "failed", res.status
            res.reason = f"listed in KNOWN_FAILURES but {was} now: remove the entry ({KNOWN_FAILURES[case.name]})"
    return res


def _run_case(case: NodeCase, res: CaseResult) -> None:
    from edgec.hostrun import host_model_for

    if not case.data_sets:
        raise RuntimeError("test has no data sets")
    rtol, atol = _tolerances(case.name, case.ops)
    compiled: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory(prefix="edgec-nodetest-") as tmp:
        work = Path(tmp)
        try:
            for k, (ins, outs) in enumerate(case.data_sets):
                model, keep = bake_static_inputs(case.model, ins)
                key = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
                if key not in compiled:
                    feed = {case.model.graph.input[i].name: ins[i] for i in keep if ins[i] is not None}
                    result = _compile(model, work, f"m{len(compiled)}", _dynamic_input_shapes(model, feed))
                    g = result.graph
                    for t in list(g.inputs) + list(g.outputs):
                        dt = g.tensor(t).dtype
                        if dt != "float32":
                            raise RuntimeError(
                                f"edgec accepted the model but graph {'input' if t in g.inputs else 'output'} "
                                f"'{t}' is {dt}; the generated C API is float32-only"
                            )
                    host = host_model_for(result, work / f"host{len(compiled)}")
                    compiled[key] = (result, host)
                result, host = compiled[key]
                g = result.graph
                feed = {case.model.graph.input[i].name: ins[i] for i in keep if ins[i] is not None}
                # edgec keeps the model's input order; map by name
                names = list(g.inputs)
                missing = [n for n in names if n not in feed]
                if missing:
                    raise RuntimeError(f"compiled model wants inputs {missing} the test does not give")
                got = host.run([np.asarray(feed[n], np.float32) for n in names])
                if len(got) != len(outs):
                    raise RuntimeError(f"{len(got)} outputs, expected {len(outs)}")
                for o, (a, want) in enumerate(zip(got, outs)):
                    msg, err = _compare(case.model.graph.output[o].name, a, want, rtol, atol)
                    res.max_abs = max(res.max_abs, err)
                    if msg:
                        res.details.append(f"data set {k}: {msg}")
            if res.details:
                res.status = "failed"
                res.reason = res.details[0]
        finally:
            for _, host in compiled.values():
                host.close()


def _run_named(name: str) -> CaseResult:
    return run_case(get_case(name))


def _worker_run(payload: bytes) -> CaseResult:
    import pickle

    return run_case(pickle.loads(payload))


def _warm() -> None:
    import edgec.compiler  # noqa: F401 - import TVM once in the fork server
    import edgec.hostrun  # noqa: F401
    from edgec.ops.registry import all_ops

    all_ops()


def run_cases(cases: Sequence[NodeCase], jobs: int | None = None, progress=None) -> list[CaseResult]:
    """Run cases, in `jobs` worker processes (default: the number of CPUs)."""
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    jobs = min(jobs, max(1, len(cases)))
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is None and not (main_file and os.path.isfile(main_file)):
        jobs = 1  # stdin / interactive: worker processes could not re-import __main__
    results: dict[str, CaseResult] = {}
    if jobs == 1:
        for c in cases:
            r = run_case(c)
            results[c.name] = r
            if progress:
                progress(r)
    else:
        import multiprocessing as mp
        import pickle
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("forkserver")
        # TVM is imported once in the fork server; each worker is forked from it
        ctx.set_forkserver_preload(["edgec.compiler", "edgec.hostrun"])
        # longest first (many ops / big data) keeps both workers busy to the end
        order = sorted(cases, key=lambda c: -len(c.model.SerializeToString()))
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_warm) as ex:
            futs = {ex.submit(_worker_run, pickle.dumps(c)): c for c in order}
            for f in as_completed(futs):
                c = futs[f]
                try:
                    r = f.result()
                except Exception as e:  # noqa: BLE001 - a worker died (segfault in generated C, ...)
                    r = CaseResult(c.name, c.ops, "failed", f"worker crashed: {type(e).__name__}: {e}", origin=c.origin)
                results[c.name] = r
                if progress:
                    progress(r)
    return [results[c.name] for c in cases]


# ---- summary ----------------------------------------------------------------------

STATUSES = ("passed", "failed", "unsupported", "known")


@dataclass
class Summary:
    results: list[CaseResult]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if r.status == "failed"]

    def per_op(self) -> dict[str, Counter]:
        per: dict[str, Counter] = defaultdict(Counter)
        for r in self.results:
            for op in r.ops:
                per[op][r.status] += 1
        return dict(sorted(per.items()))

    def text(self, verbose: bool = False) -> str:
        lines = []
        n = len(self.results)
        lines.append(
            f"ONNX node tests through edgec (host C): {n} run, {self.count('passed')} passed, "
            f"{self.count('failed')} failed, {self.count('unsupported')} skipped (unsupported), "
            f"{self.count('known')} known bugs (xfail)"
        )
        by_origin = Counter(r.origin for r in self.results)
        lines.append(
            f"  ({by_origin['onnx']} ONNX node tests, {by_origin['derived']} of them re-run without optional "
            f"outputs, {by_origin['extra']} edgec extra cases)"
        )
        lines.append("")
        lines.append(f"{'op':<22}{'tests':>6}{'passed':>8}{'failed':>8}{'skipped':>9}{'known':>7}")
        for op, c in self.per_op().items():
            lines.append(f"{op:<22}{sum(c.values()):>6}{c['passed']:>8}{c['failed']:>8}{c['unsupported']:>9}{c['known']:>7}")
        fails = self.failures
        if fails:
            lines.append("")
            lines.append("FAILED:")
            for r in fails:
                lines.append(f"  {r.name}: {r.reason}")
        known: dict[str, list[str]] = defaultdict(list)
        for r in self.results:
            if r.status == "known":
                known[KNOWN_FAILURES.get(r.name, r.reason)].append(r.name)
        if known:
            lines.append("")
            lines.append("known bugs outside the op bundles (expected failures):")
            for why, names in known.items():
                lines.append(f"  {why}:")
                lines.append(f"    {', '.join(sorted(names))}")
        if verbose:
            lines.append("")
            lines.append("skipped (unsupported):")
            for r in self.results:
                if r.status == "unsupported":
                    lines.append(f"  {r.name}: {r.reason}")
        return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgec.nodetests", description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", dest="substr", action="append", default=[], help="only tests whose name contains this (repeatable)")
    ap.add_argument("--op", action="append", default=[], help="only tests using this op (repeatable)")
    ap.add_argument("-j", "--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    ap.add_argument("-v", "--verbose", action="store_true", help="also list skipped tests and their reasons")
    ap.add_argument("--progress", action="store_true", help="print each result as it arrives")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    cases = [c for c in node_cases()
             if (not args.op or set(args.op) & set(c.ops)) and (not args.substr or any(s in c.name for s in args.substr))]

    def progress(r: CaseResult) -> None:
        print(f"  {r.status:<11} {r.name} ({r.seconds:.2f} s){': ' + r.reason if r.status != 'passed' else ''}", flush=True)

    results = run_cases(cases, args.jobs, progress if args.progress else None)
    s = Summary(results)
    print(s.text(args.verbose))
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 1 if s.failures else 0


if __name__ == "__main__":
    sys.exit(main())
