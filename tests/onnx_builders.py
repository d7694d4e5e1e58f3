"""Small ONNX models built in tests (onnx.helper), written to tmp paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


def float_examples() -> list[Path]:
    """The float example models (examples/*.onnx without the quantized ones, which
    tests/test_onnx_quantized.py covers)."""
    from edgec.frontend.onnx_quantized import is_quantized_onnx

    return [p for p in sorted(EXAMPLES_DIR.glob("*.onnx")) if not is_quantized_onnx(p)]


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


def host_vs_onnxruntime(path: Path, *, xs=None, seed: int = 0, scale: float = 1.0, rtol: float = 1e-4, atol: float = 1e-4,
                        input_shapes=None, runs: int = 1):
    """Compile `path` for the host, run the generated C and onnxruntime on the
    same inputs and assert they agree. With runs=2 the C runs twice over the same
    (dirty) arena and must give identical bytes. Returns (result, xs, ys, refs)."""
    import onnxruntime as ort

    from edgec.compiler import compile_model
    from edgec.hostrun import host_model_for

    r = compile_model(path, "host", build=False, input_shapes=input_shapes)
    if xs is None:
        rng = np.random.default_rng(seed)
        xs = [(scale * rng.standard_normal(r.graph.tensor(i).shape)).astype(np.float32) for i in r.graph.inputs]
    host = host_model_for(r)
    try:
        ys = host.run(xs)
        again = [host.run(xs) for _ in range(runs - 1)]
    finally:
        host.close()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    refs = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})
    assert len(ys) == len(refs)
    for y, ref in zip(ys, refs):
        np.testing.assert_allclose(y, ref, rtol=rtol, atol=atol)
    for other in again:
        for y, y2 in zip(ys, other):
            np.testing.assert_array_equal(y, y2)
    return r, xs, ys, refs
