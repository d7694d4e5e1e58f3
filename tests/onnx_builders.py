"""Small ONNX models built in tests (onnx.helper), written to tmp paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr), name)


def model(nodes, inputs, outputs, inits=(), opset=17, name="m") -> onnx.ModelProto:
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def f32(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def conv_bn_relu(rng: np.random.Generator, c_in=3, c_out=4, hw=8) -> onnx.ModelProto:
    """x -> Conv -> BatchNormalization -> Relu -> y"""
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, c_out).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    mean = rng.standard_normal(c_out).astype(np.float32)
    var = rng.uniform(0.5, 2.0, c_out).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], name="bn", epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["y"], name="relu"),
    ]
    inits = [init("w", w), init("b", b), init("s", scale), init("bb", bias), init("m", mean), init("v", var)]
    return model(nodes, [f32("x", [1, c_in, hw, hw])], [f32("y", [1, c_out, hw, hw])], inits)
