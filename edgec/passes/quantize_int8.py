"""Post-training int8 quantization of a float ONNX graph (PTQ).

float graph (after eliminate_identity, fold_batchnorm)
  1. refuse op types with no int8 equivalent (all listed at once, before calibrating)
  2. weights -> int8 per output channel, symmetric ([-127, 127], zero point 0)
  3. calibration: run the float graph with the ops' NumPy references over the
     samples; an observer per activation tensor (minmax / percentile / mse)
     collects its range; the same run measures, per output channel, the mean
     output shift the weight rounding causes (empirical bias correction)
  4. activation parameters: int8 per tensor, asymmetric (zero point exact);
     fixed where the int8 kernels fix them (softmax / logistic 1/256, -128;
     tanh 1/128, 0); max pool, pad and reshapes keep their input's
  5. biases -> int32 at scale input_scale * weight_scale (after correction)
  6. to_nhwc_int8: the annotated graph becomes edgec.q nodes in NHWC, with
     TFLite's fixed-point requantization (integer-only C).

The model's inputs and outputs become int8 (the C API takes and returns int8
with the INPUTk/OUTPUTk_SCALE / _ZERO_POINT macros of model.h; rank-4 tensors
in NHWC), see docs/quantization.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgec.calibration import DEFAULT_OBSERVER, make_observer
from edgec.errors import ModelError, UnsupportedOpsError
from edgec.ir import Graph, Node, QuantParams, Tensor
from edgec.ir.interpret import run_reference
from edgec.ops.registry import lookup
from edgec.passes import to_nhwc_int8 as cv
from edgec.passes.pipeline import GraphPass

_WEIGHTED = {"Conv": 1, "Gemm": -1, "MatMul": -1}  # op -> output channel axis
_SAME_AS_INPUT = {"MaxPool", "Pad", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}


@dataclass
class QuantizeConfig:
    samples: list[list[np.ndarray]]  # calibration samples (per-sample list of inputs, model order)
    observer: str = DEFAULT_OBSERVER
    bias_correction: bool = True
    random_calibration: bool = False


@dataclass
class QuantizeReport:
    observer: str
    samples: int
    random_calibration: bool
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # observed float range per tensor
    params: dict[str, tuple[float, int]] = field(default_factory=dict)  # chosen (scale, zero point)
    bias_corrected: int = 0
    max_bias_shift: float = 0.0  # largest |correction| in output units

    def to_json(self) -> dict:
        return {"scheme": "int8 PTQ: per-channel symmetric weights, per-tensor asymmetric activations, int32 bias",
                "observer": self.observer, "calibration_samples": self.samples,
                "random_calibration": self.random_calibration, "bias_correction_layers": self.bias_corrected,
                "max_bias_correction": self.max_bias_shift}


def _weight_axis(g: Graph, n: Node) -> int | None:
    """Output-channel axis of the weight input (None: no constant weight)."""
    if n.op not in _WEIGHTED or not g.is_const(n.inputs[1]):
        return None
    if n.op == "Conv":
        return 0
    if n.op == "Gemm":
        return 0 if n.attrs.get("transB", 0) else 1
    return 1


def quantize(g: Graph, cfg: QuantizeConfig) -> tuple[Graph, QuantizeReport]:
    bad = cv.unsupported_nodes(g)
    if bad:
        raise UnsupportedOpsError(bad)
    for name in g.inputs + g.outputs:
        if g.tensor(name).dtype != "float32":
            raise ModelError(f"graph input/output '{name}' has dtype {g.tensor(name).dtype}; PTQ takes float32 models")
    if not cfg.samples:
        raise ModelError("no calibration samples")
    for k, (name, x) in enumerate(zip(g.inputs, cfg.samples[0])):
        if tuple(np.shape(x)) != tuple(g.tensor(name).shape):
            raise ModelError(f"calibration sample for input '{name}' has shape {np.shape(x)}, the model takes {g.tensor(name).shape}")

    # ---- weights: int8 per channel ------------------------------------------------------
    wq: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    delta_nodes: dict[int, tuple[Node, np.ndarray]] = {}
    for n in g.nodes:
        axis = _weight_axis(g, n)
        if axis is None or n.inputs[1] in wq:
            continue
        w = g.tensor(n.inputs[1]).data.astype(np.float64)
        qv, s = cv.quantize_per_channel(w, axis)
        wq[n.inputs[1]] = (qv, s, axis)
    for n in g.nodes:
        axis = _weight_axis(g, n)
        if axis is not None and cfg.bias_correction:
            qv, s, ax = wq[n.inputs[1]]
            shp = [1] * qv.ndim
            shp[ax] = -1
            dw = (qv.astype(np.float64) * s.astype(np.float64).reshape(shp) - g.tensor(n.inputs[1]).data.astype(np.float64))
            delta_nodes[id(n)] = (n, dw.astype(np.float32))

    # ---- calibration ----------------------------------------------------------------------
    runtime = [t for t in g.inputs] + [o for n in g.nodes for o in n.outputs if o]
    observers = {t: make_observer(cfg.observer) for t in runtime}
    shift_sum: dict[int, np.ndarray] = {}
    shift_cnt: dict[int, int] = {}

    def hook(n: Node, env: dict) -> None:
        if id(n) not in delta_nodes:
            return
        node, dw = delta_nodes[id(n)]
        d = lookup(node.op, node.domain)
        probe = node.with_(inputs=node.inputs[:2])
        if node.op == "Gemm":
            probe = probe.with_(attrs={**node.attrs, "beta": 1.0})
        y = np.asarray(d.reference(probe, [env[node.inputs[0]], dw])[0], np.float64)
        ch_axis = 1 if node.op == "Conv" else y.ndim - 1
        red = tuple(i for i in range(y.ndim) if i != ch_axis)
        shift_sum[id(n)] = shift_sum.get(id(n), 0.0) + y.sum(axis=red)
        shift_cnt[id(n)] = shift_cnt.get(id(n), 0) + int(np.prod([y.shape[i] for i in red]))

    for sample in cfg.samples:
        feeds = {name: np.asarray(x, np.float32) for name, x in zip(g.inputs, sample)}
        env = run_reference(g, feeds, keep_all=True, float32=True, on_node=hook)
        for t in runtime:
            observers[t].update(env[t])

    report = QuantizeReport(cfg.observer, len(cfg.samples), cfg.random_calibration)
    ranges = {t: observers[t].range() for t in runtime}
    report.ranges = ranges

    # ---- activation parameters ------------------------------------------------------------
    params: dict[str, tuple[float, int]] = {t: cv.choose_qparams(*ranges[t]) for t in runtime}
    prod = g.producers()
    cons = g.consumers()
    for n in g.nodes:
        o = n.outputs[0]
        if n.op == "Softmax":
            params[o] = cv.SOFTMAX_OUT
        elif n.op == "Sigmoid":
            params[o] = cv.LOGISTIC_OUT
        elif n.op == "Tanh":
            params[o] = cv.TANH_OUT
        elif n.op in _SAME_AS_INPUT:
            params[o] = params[n.inputs[0]]
        elif n.op == "Concat":  # let the producers write the concatenation's parameters directly
            for i in n.inputs:
                p = prod.get(i)
                if (i and p is not None and len(cons.get(i, [])) == 1 and i not in g.outputs
                        and p.op not in _SAME_AS_INPUT and p.op not in ("Softmax", "Sigmoid", "Tanh")):
                    params[i] = params[o]
    fused = cv.fused_intermediates(g)
    report.params = {t: p for t, p in params.items() if t not in fused}

    # ---- annotated graph ------------------------------------------------------------------
    tensors = dict(g.tensors)
    for t in runtime:
        old = tensors[t]
        tensors[t] = Tensor(t, old.shape, old.dtype, None, None if t in fused else cv.qp(*params[t]))
    for name, (qv, s, axis) in wq.items():
        old = tensors[name]
        tensors[name] = Tensor(name, old.shape, "int8", qv, QuantParams(s, np.zeros(s.size, np.int32), axis))
    nodes = []
    for n in g.nodes:
        if id(n) in shift_sum:
            corr = shift_sum[id(n)] / max(shift_cnt[id(n)], 1)
            report.bias_corrected += 1
            report.max_bias_shift = max(report.max_bias_shift, float(np.abs(corr).max()))
            bias_idx = 2
            has_bias = len(n.inputs) > bias_idx and n.inputs[bias_idx]
            if n.op == "MatMul":
                # MatMul has no bias input: turn it into FC-with-bias through Gemm semantics only if rank 2
                if len(g.tensor(n.inputs[0]).shape) != 2:
                    nodes.append(n)
                    continue
                n = Node(n.name, "Gemm", n.inputs[:2], n.outputs, {"_opset": n.attrs.get("_opset")}, n.domain)
                has_bias = False
            beta = float(n.attrs.get("beta", 1.0)) if n.op == "Gemm" else 1.0
            old = g.tensor(n.inputs[2]).data.astype(np.float64).reshape(-1) * beta if has_bias else 0.0
            if n.op == "Gemm" and beta != 1.0:
                n = n.with_(attrs={**n.attrs, "beta": 1.0})
            newb = (old - corr).astype(np.float32)
            bname = g.fresh_name(f"{n.name}_bias_corrected", tensors)
            tensors[bname] = Tensor(bname, (newb.size,), "float32", newb)
            n = n.with_(inputs=(n.inputs[0], n.inputs[1], bname))
        nodes.append(n)
    ann = Graph(g.name, tensors, nodes, list(g.inputs), list(g.outputs), g.opset)
    ann = ann.with_nodes(nodes)
    return cv.to_int8(ann), report


def make_pass(cfg: QuantizeConfig, report_sink: list | None = None) -> GraphPass:
    """The pass configured with calibration data (a GraphPass takes only a Graph)."""

    def run(g: Graph) -> Graph:
        out, rep = quantize(g, cfg)
        if report_sink is not None:
            report_sink.append(rep)
        return out

    return GraphPass("quantize_int8", run, requires=PASS.requires, doc=PASS.doc)


def _unconfigured(g: Graph) -> Graph:
    raise ModelError("the quantize_int8 pass needs calibration data: build it with quantize_int8.make_pass(QuantizeConfig(...))")


PASS = GraphPass("quantize_int8", _unconfigured, requires=("eliminate_identity", "fold_batchnorm"),
                 doc="int8 post-training quantization (calibrated) into edgec.q ops")

__all__ = ["PASS", "QuantizeConfig", "QuantizeReport", "make_pass", "quantize"]
