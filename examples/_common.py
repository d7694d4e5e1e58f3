"""Shared helpers for the ``make_*.py`` example-model scripts.

Not an example itself (the Makefile only runs ``make_*.py``).  Each script
imports this module from its own directory, so it works with any cwd.

What every script does through these helpers:

* seeds torch (``torch.manual_seed(0)``) before building the model, so weights
  and the test input are the same on every run;
* gives every BatchNorm layer non-trivial running statistics and affine
  parameters (``randomize_batchnorm``), so a compiler that folds BN into the
  preceding Conv/Gemm actually has something to fold;
* exports, then checks the file with ``onnx.checker.check_model`` (by path, so
  external data is resolved), runs it with onnxruntime on the same random
  input as torch, asserts the max abs error is below ``ATOL``, and prints the
  node op-type histogram.
"""

from __future__ import annotations

import collections
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ATOL = 1e-4

# The TorchScript exporter prints a DeprecationWarning on every call; the
# example scripts use it on purpose (it is what many real deployments still
# produce), so keep the output readable.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")


def seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@torch.no_grad()
def randomize_batchnorm(model: nn.Module) -> int:
    """Give every BatchNorm layer deterministic, non-trivial statistics.

    Freshly constructed BN layers have mean 0, var 1, gamma 1, beta 0, i.e.
    they are identities and a wrong BN-folding implementation would go
    unnoticed.  Uses the global torch RNG (seeded by the caller).
    Returns the number of BN layers touched.
    """
    n_bn = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c) * 0.2)
            m.running_var.copy_(torch.rand(c) * 1.5 + 0.25)  # in [0.25, 1.75)
            if m.affine:
                m.weight.copy_(torch.rand(c) + 0.5)  # in [0.5, 1.5)
                m.bias.copy_(torch.randn(c) * 0.1)
            n_bn += 1
    return n_bn


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def export_torchscript(model: nn.Module, x: torch.Tensor, path: Path, opset: int) -> None:
    """Legacy (TorchScript) exporter, weights embedded in the .onnx file.

    ``training=PRESERVE`` with the model in eval mode exports BatchNormalization
    in inference mode *without* the exporter's own Conv+BN fusion (the "eval
    peephole"), so the BN nodes stay in the graph for the compiler to fold.
    Constant folding is still on.
    """
    assert not model.training, "call model.eval() first"
    with warnings.catch_warnings():
        # "recommended that constant folding be turned off ... PRESERVE (when model
        # is in training mode)": does not apply, the model is in eval mode.
        warnings.filterwarnings("ignore", message=".*constant folding be turned off.*")
        _ts_export(model, x, path, opset)


def _ts_export(model: nn.Module, x: torch.Tensor, path: Path, opset: int) -> None:
    torch.onnx.export(
        model,
        (x,),
        str(path),
        dynamo=False,
        opset_version=opset,
        input_names=["input"],
        output_names=["output"],
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=True,
    )


def op_histogram(model: onnx.ModelProto) -> collections.Counter:
    hist: collections.Counter = collections.Counter()

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
            hist[key] += 1
            for attr in node.attribute:  # subgraphs (If/Loop/Scan), if any
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    for g in attr.graphs:
                        walk(g)

    walk(model.graph)
    return hist


# Elementwise ops a compiler normally fuses into the producer (or runs in place).
_INPLACE_OPS = {"BatchNormalization", "Relu", "Clip", "Reshape", "Flatten"}


def activation_footprint(model: onnx.ModelProto, inplace: bool = False) -> tuple[int, int]:
    """(largest activation tensor, peak live activations) in bytes, float32.

    Peak is a plain liveness walk in the graph's node order (a tensor lives
    from its producer to its last consumer; a node's inputs and outputs are
    live together; graph input and output included).  With ``inplace=False``
    there is no buffer reuse, tiling or fusion: what a naive layer-by-layer
    executor needs.  With ``inplace=True``, BN / ReLU / Clip / Reshape /
    Flatten write over their input when it dies there (roughly the footprint
    after BN folding and activation fusion).
    """
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            n = 1
            for d in dims:
                n *= d.dim_value
            shapes[vi.name] = n * 4
    consts = {t.name for t in g.initializer}
    consts |= {o for n in g.node if n.op_type == "Constant" for o in n.output}

    def act(name: str) -> bool:
        return bool(name) and name not in consts and name in shapes

    last_use = {}
    for i, n in enumerate(g.node):
        for name in n.input:
            if act(name):
                last_use[name] = i
    for o in g.output:
        last_use[o.name] = len(g.node)
    live = {i.name: shapes[i.name] for i in g.input if act(i.name)}
    peak = sum(live.values())
    for i, n in enumerate(g.node):
        if inplace and n.op_type in _INPLACE_OPS and n.input and last_use.get(n.input[0]) == i:
            live.pop(n.input[0], None)
        for name in n.output:
            if act(name):
                live[name] = shapes[name]
        peak = max(peak, sum(live.values()))
        for name in list(live):
            if last_use.get(name, -1) <= i:
                del live[name]
    return max(shapes[k] for k in shapes if k not in consts), peak


def check_and_compare(
    path: Path,
    model: nn.Module,
    x: torch.Tensor,
    *,
    required_ops: tuple[str, ...] = (),
    atol: float = ATOL,
) -> dict:
    """Validate an exported model against the torch module it came from."""
    path = Path(path)
    # Path-based check: handles external data and models > 2 GB alike.
    onnx.checker.check_model(str(path), full_check=True)
    m = onnx.load(str(path))  # loads external data from path's directory
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))

    with torch.no_grad():
        ref = model(x).detach().cpu().numpy()

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    (got,) = sess.run(None, {inp.name: x.detach().cpu().numpy()})

    assert got.shape == ref.shape, f"shape mismatch: onnxruntime {got.shape} vs torch {ref.shape}"
    err = float(np.max(np.abs(got - ref)))
    hist = op_histogram(m)

    size = path.stat().st_size
    m_noext = onnx.load(str(path), load_external_data=False)
    data_files = sorted(
        {
            e.value
            for t in m_noext.graph.initializer
            if t.data_location == onnx.TensorProto.EXTERNAL
            for e in t.external_data
            if e.key == "location"
        }
    )
    for d in data_files:
        size += (path.parent / d).stat().st_size

    print(f"== {path.name}")
    print(f"   opset {opset}, input {inp.name} {list(x.shape)}, output {list(ref.shape)}")
    print(f"   params {n_params(model):,}, file size {size:,} bytes"
          + (f" (external data: {', '.join(data_files)})" if data_files else ""))
    biggest, peak = activation_footprint(m)
    _, peak_fused = activation_footprint(m, inplace=True)
    print(f"   float32: weights {n_params(model) * 4 / 1024:.1f} KiB; activations: largest tensor "
          f"{biggest / 1024:.1f} KiB, peak {peak / 1024:.1f} KiB naive, "
          f"{peak_fused / 1024:.1f} KiB with BN/ReLU/Clip fused")
    print(f"   max |torch| = {np.max(np.abs(ref)):.4g}, max abs err (onnxruntime vs torch) = {err:.3e}")
    print("   op types: " + ", ".join(f"{k} x{v}" for k, v in sorted(hist.items())))
    print(f"   {sum(hist.values())} nodes")

    assert err < atol, f"{path.name}: onnxruntime differs from torch by {err:.3e} (>= {atol})"
    missing = [op for op in required_ops if op not in hist]
    assert not missing, f"{path.name}: expected op types missing from the graph: {missing}"
    return {"opset": opset, "err": err, "hist": hist, "size": size, "params": n_params(model),
            "largest_act": biggest, "peak_act": peak, "peak_act_fused": peak_fused}
