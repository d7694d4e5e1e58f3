"""ONNX frontend: constant folding, Constant nodes, local functions, opset range,
--input-shape handling."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.compiler import compile_model
from edgec.errors import EdgecError, ModelError, UnsupportedOpsError
from edgec.frontend import load_onnx, parse_input_shapes
from edgec.frontend.onnx_frontend import MAX_OPSET, MIN_OPSET
from onnx_builders import f32, host_vs_onnxruntime, init, model, save


def _host_vs_ort(path, xs=None, input_shapes=None, seed=0):
    return host_vs_onnxruntime(path, xs=xs, input_shapes=input_shapes, seed=seed, atol=1e-5)[0]


def _torch_style_flatten(batch_dim=1, dynamic=False) -> onnx.ModelProto:
    """x -> Shape -> Gather(0) -> Unsqueeze -> Concat([n, -1]) -> Reshape(x) -> Gemm -> Relu,
    the pattern torch.onnx writes for `x.view(x.size(0), -1)`."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Relu", ["x"], ["xr"], name="pre"),
        helper.make_node("Shape", ["xr"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["xr", "target"], ["flat"], name="reshape"),
        helper.make_node("Gemm", ["flat", "w", "b"], ["y"], name="fc", transB=1),
    ]
    inits = [
        init("zero", np.array(0, np.int64)),
        init("axes0", np.array([0], np.int64)),
        init("minus1", np.array([-1], np.int64)),
        init("w", rng.standard_normal((5, 24)).astype(np.float32)),
        init("b", rng.standard_normal(5).astype(np.float32)),
    ]
    b = "N" if dynamic else batch_dim
    return model(nodes, [f32("x", [b, 2, 3, 4])], [f32("y", [b, 5])], inits)


def test_shape_gather_unsqueeze_concat_reshape_folded(tmp_path):
    g = load_onnx(save(_torch_style_flatten(), tmp_path / "m.onnx"))
    ops = [n.op for n in g.nodes]
    assert not {"Shape", "Gather", "Unsqueeze", "Concat", "Constant"} & set(ops)
    assert ops == ["Relu", "Reshape", "Gemm"]
    # the Reshape now reads a folded constant shape
    reshape = g.nodes[1]
    assert g.is_const(reshape.inputs[1])
    np.testing.assert_array_equal(g.tensor(reshape.inputs[1]).data, [1, -1])
    assert g.tensor("flat").shape == (1, 24)
    # intermediate shape tensors do not survive
    assert not {"shp", "n", "n1"} & set(g.tensors)


def test_folded_reshape_chain_compiles_and_matches(tmp_path):
    p = save(_torch_style_flatten(), tmp_path / "m.onnx")
    r = _host_vs_ort(p)
    assert [layer.op for layer in r.layers] == ["Relu", "Reshape", "Gemm"]
    assert [layer.kind for layer in r.layers] == ["tvm", "alias", "tvm"]


def test_folding_follows_the_input_shape(tmp_path):
    # with a dynamic batch, the folded shape depends on --input-shape
    p = save(_torch_style_flatten(dynamic=True), tmp_path / "m.onnx")
    g = load_onnx(p, {"x": (3, 2, 3, 4)})
    reshape = next(n for n in g.nodes if n.op == "Reshape")
    np.testing.assert_array_equal(g.tensor(reshape.inputs[1]).data, [3, -1])
    assert g.tensor("y").shape == (3, 5)
    _host_vs_ort(p, input_shapes={"x": (3, 2, 3, 4)})


def test_constant_subgraph_folded_into_one_weight(tmp_path):
    # w = Transpose(Mul(w0, 2)) is computed at compile time
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Mul", ["w0", "two"], ["w1"]),
        helper.make_node("Transpose", ["w1"], ["w"]),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ]
    m = model(nodes, [f32("x", [2, 4])], [f32("y", [2, 3])],
              [init("w0", w0.T.copy()), init("two", np.array(2.0, np.float32))])
    p = save(m, tmp_path / "m.onnx")
    g = load_onnx(p)
    assert [n.op for n in g.nodes] == ["MatMul"]
    np.testing.assert_allclose(g.tensor(g.nodes[0].inputs[1]).data, 2 * w0)
    assert not {"w0", "two", "w1"} & set(g.tensors)
    _host_vs_ort(p)


# ---- Constant nodes ---------------------------------------------------------------

def test_constant_nodes_become_constants(tmp_path):
    k = np.arange(12, dtype=np.float32).reshape(1, 3, 4) / 10
    nodes = [
        helper.make_node("Constant", [], ["k"], name="c_tensor", value=numpy_helper.from_array(k)),
        helper.make_node("Constant", [], ["shape"], name="c_ints", value_ints=[1, 12]),
        helper.make_node("Constant", [], ["half"], name="c_float", value_float=0.5),
        helper.make_node("Add", ["x", "k"], ["a"], name="add"),
        helper.make_node("Mul", ["a", "half"], ["m"], name="mul"),
        helper.make_node("Reshape", ["m", "shape"], ["y"], name="reshape"),
    ]
    m = model(nodes, [f32("x", [1, 3, 4])], [f32("y", [1, 12])])
    p = save(m, tmp_path / "m.onnx")
    g = load_onnx(p)
    assert [n.op for n in g.nodes] == ["Add", "Mul", "Reshape"]
    assert g.is_const("k") and g.tensor("k").dtype == "float32"
    np.testing.assert_array_equal(g.tensor("k").data, k)
    assert g.is_const("shape") and g.tensor("shape").dtype == "int64"
    np.testing.assert_array_equal(g.tensor("shape").data, [1, 12])
    assert g.is_const("half") and g.tensor("half").shape == () and float(g.tensor("half").data) == 0.5
    _host_vs_ort(p)


def test_constant_node_as_graph_output(tmp_path):
    k = np.array([[1.0, -2.0], [3.0, 4.5]], np.float32)
    m = model([helper.make_node("Constant", [], ["y"], value=numpy_helper.from_array(k)),
               helper.make_node("Relu", ["x"], ["z"])],
              [f32("x", [2, 2])], [f32("y", [2, 2]), f32("z", [2, 2])])
    p = save(m, tmp_path / "m.onnx")
    g = load_onnx(p)
    assert g.is_const("y") and [n.op for n in g.nodes] == ["Relu"]
    _host_vs_ort(p)


# ---- model-local functions ----------------------------------------------------------

def _model_with_function() -> onnx.ModelProto:
    """y = MyBlock(x) where MyBlock(a) = Sigmoid(Relu(a) * s) + a, a local function."""
    fn = helper.make_function(
        "my.domain", "MyBlock", ["a", "s"], ["b"],
        [
            helper.make_node("Relu", ["a"], ["r"]),
            helper.make_node("Mul", ["r", "s"], ["m"]),
            helper.make_node("Sigmoid", ["m"], ["g"]),
            helper.make_node("Add", ["g", "a"], ["b"]),
        ],
        [helper.make_opsetid("", 17)],
    )
    nodes = [
        helper.make_node("MyBlock", ["x", "scale"], ["h"], domain="my.domain", name="block1"),
        helper.make_node("MyBlock", ["h", "scale"], ["y"], domain="my.domain", name="block2"),
    ]
    g = helper.make_graph(nodes, "fn", [f32("x", [1, 4, 3])], [f32("y", [1, 4, 3])],
                          [init("scale", np.full((1, 4, 1), 1.5, np.float32))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.domain", 1)],
                          functions=[fn])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def test_function_model_runs_in_onnxruntime(tmp_path):
    # sanity check of the test model itself
    p = save(_model_with_function(), tmp_path / "m.onnx")
    x = np.ones((1, 4, 3), np.float32)
    (y,) = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert y.shape == (1, 4, 3)


def test_local_functions_inlined(tmp_path):
    p = save(_model_with_function(), tmp_path / "m.onnx")
    g = load_onnx(p)
    assert [n.op for n in g.nodes] == ["Relu", "Mul", "Sigmoid", "Add"] * 2
    assert all(n.domain == "" for n in g.nodes)
    r = _host_vs_ort(p)
    assert all(n.domain in ("", "edgec") for n in r.graph.nodes)


# ---- opset range --------------------------------------------------------------------

@pytest.mark.parametrize("opset", [MIN_OPSET - 1, 7, MAX_OPSET + 1])
def test_opset_outside_range_refused(opset, tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", [1, 4])], [f32("y", [1, 4])], opset=opset)
    p = save(m, tmp_path / "m.onnx")
    with pytest.raises(ModelError, match=rf"opset {opset} is outside the supported range {MIN_OPSET}\.\.{MAX_OPSET}"):
        load_onnx(p)


@pytest.mark.parametrize("opset", [MIN_OPSET, 13, 17, MAX_OPSET])
def test_opset_inside_range_accepted(opset, tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", [1, 4])], [f32("y", [1, 4])], opset=opset)
    g = load_onnx(save(m, tmp_path / "m.onnx"))
    assert g.opset == opset and [n.op for n in g.nodes] == ["Relu"]


# ---- --input-shape -------------------------------------------------------------------

def _dyn_model(dims=("N", 8)) -> onnx.ModelProto:
    return model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", list(dims))], [f32("y", list(dims))])


def test_dynamic_input_needs_a_shape(tmp_path):
    p = save(_dyn_model(), tmp_path / "m.onnx")
    with pytest.raises(ModelError, match=r"dynamic shape \(\?x8\).*--input-shape x="):
        load_onnx(p)


def test_input_shape_fixes_dynamic_dims(tmp_path):
    p = save(_dyn_model(), tmp_path / "m.onnx")
    g = load_onnx(p, {"x": (3, 8)})
    assert g.tensor("x").shape == (3, 8) and g.tensor("y").shape == (3, 8)
    _host_vs_ort(p, input_shapes={"x": (3, 8)})


def test_input_shape_matching_static_shape_accepted(tmp_path):
    p = save(_dyn_model((2, 8)), tmp_path / "m.onnx")
    assert load_onnx(p, {"x": (2, 8)}).tensor("x").shape == (2, 8)


@pytest.mark.parametrize("shape", [(3, 9), (1, 8, 1), (8,)])
def test_input_shape_mismatch_refused(shape, tmp_path):
    p = save(_dyn_model(), tmp_path / "m.onnx")
    with pytest.raises(ModelError, match=r"--input-shape x=.* does not match the model's \['\?', 8\]"):
        load_onnx(p, {"x": shape})


def test_input_shape_conflicting_static_dim_refused(tmp_path):
    p = save(_dyn_model((2, 8)), tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="does not match"):
        load_onnx(p, {"x": (4, 8)})


def test_input_shape_unknown_name_refused(tmp_path):
    p = save(_dyn_model(), tmp_path / "m.onnx")
    with pytest.raises(ModelError, match=r"unknown input\(s\) \['z'\].*inputs are \['x'\]"):
        load_onnx(p, {"x": (1, 8), "z": (1,)})


def test_input_shape_through_compile_model(tmp_path):
    p = save(_dyn_model(), tmp_path / "m.onnx")
    with pytest.raises(ModelError):
        compile_model(p, "host", build=False, input_shapes={"x": (1, 7)})
    r = compile_model(p, "host", build=False, input_shapes=parse_input_shapes(["x=4x8"]))
    assert r.graph.tensor("x").shape == (4, 8)


@pytest.mark.parametrize("spec, expected", [
    (["x=1x3x96x96"], {"x": (1, 3, 96, 96)}),
    (["x=2,8"], {"x": (2, 8)}),
    ([" in.0=5 "], {"in.0": (5,)}),
    (["a=1x2", "b=3"], {"a": (1, 2), "b": (3,)}),
    ([], {}),
])
def test_parse_input_shapes(spec, expected):
    assert parse_input_shapes(spec) == expected


@pytest.mark.parametrize("spec", ["x", "x=", "x=1xx2", "=1x2", "x=1x-2", "x=a"])
def test_parse_input_shapes_bad_spec(spec):
    with pytest.raises(ModelError, match="bad --input-shape"):
        parse_input_shapes([spec])


# ---- misc structure --------------------------------------------------------------------

def test_dead_nodes_dropped_and_initializer_inputs_skipped(tmp_path):
    # an old-exporter style model lists its initializer among the inputs
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Sigmoid", ["x"], ["unused"])]
    m = model(nodes, [f32("x", [1, 4]), f32("w", [4, 2])], [f32("y", [1, 2])],
              [init("w", rng.standard_normal((4, 2)).astype(np.float32))])
    g = load_onnx(save(m, tmp_path / "m.onnx"))
    assert g.inputs == ["x"]
    assert [n.op for n in g.nodes] == ["MatMul"]
    assert "unused" not in g.tensors


def test_unsupported_ops_all_reported(tmp_path):
    nodes = [helper.make_node("Erf", ["x"], ["a"], name="e1"), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Einsum", ["b", "b"], ["y"], name="e2", equation="ij,ij->ij")]
    m = model(nodes, [f32("x", [2, 2])], [f32("y", [2, 2])])
    with pytest.raises(UnsupportedOpsError) as ei:
        load_onnx(save(m, tmp_path / "m.onnx"))
    assert [n[0] for n in ei.value.nodes] == ["e1", "e2"]


def test_non_float_runtime_input_refused(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])],
              [helper.make_tensor_value_info("x", TensorProto.INT32, [2])],
              [helper.make_tensor_value_info("y", TensorProto.INT32, [2])])
    with pytest.raises(EdgecError, match="float32 only"):
        load_onnx(save(m, tmp_path / "m.onnx"))


def test_graph_name_is_a_c_identifier(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", [2])], [f32("y", [2])])
    g = load_onnx(save(m, tmp_path / "9-My Model.v2.onnx"))
    assert g.name == "m_9_my_model_v2"
