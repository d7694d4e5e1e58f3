"""TFLite frontend + edgec.q int8 ops: import, shapes, errors, bit-exactness vs TFLite Micro.

References:
  - LiteRT (ai_edge_litert, reference op resolver) for op lists, tensor shapes and
    quantization parameters;
  - TFLite Micro's Python interpreter (tflite-micro) for numerics: edgec's NumPy
    references must give identical bytes, on the outputs and on every
    intermediate tensor (kPreserveAllTensors).
Single-op models for ops the MLPerf Tiny models do not use are written here with
the flatbuffer builders of the `tflite` package.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from edgec.errors import EdgecError, InputFileError, UnsupportedOpsError
from edgec.frontend.tflite_frontend import load_tflite, tflite_padding
from edgec.ir import interpret
from edgec.ops import quantized as q
from edgec.ops.registry import lookup
from edgec.resources import mlperf_models_dir

tflite = pytest.importorskip("tflite")
flatbuffers = pytest.importorskip("flatbuffers")

MODELS = mlperf_models_dir()
MLPERF = {
    "kws": "kws_ref_model.tflite",
    "vww": "vww_96_int8.tflite",
    "resnet": "pretrainedResnet_quant.tflite",
    "ad01": "ad01_int8.tflite",
    "str_ww": "str_ww_ref_model.tflite",
}
# op lists (TFLite names, in order) of the five models, as LiteRT reports them
EXPECTED_OPS = {
    "kws": ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 4 + ["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"],
    "vww": ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 13 + ["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"],
    "resnet": ["CONV_2D", "CONV_2D", "CONV_2D", "ADD"] + ["CONV_2D"] * 3 + ["ADD"] + ["CONV_2D"] * 3 + ["ADD"]
    + ["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"],
    "ad01": ["FULLY_CONNECTED"] * 10,
    "str_ww": ["DEPTHWISE_CONV_2D", "CONV_2D"] * 4 + ["RESHAPE", "FULLY_CONNECTED", "SOFTMAX"],
}
RUNS = {"kws": 10, "resnet": 10, "ad01": 10, "str_ww": 10, "vww": 10}


def _model(key: str) -> Path:
    p = MODELS / MLPERF[key]
    if not p.exists():
        pytest.skip(f"MLPerf Tiny model not found: {p}")
    return p


def run_reference(graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor's value when the graph runs with its ops' NumPy references."""
    return interpret.run_reference(graph, feeds, keep_all=True)


def _tflm(path_or_bytes, preserve: bool = False):
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    cfg = runtime.InterpreterConfig.kPreserveAllTensors if preserve else runtime.InterpreterConfig.kAllocationRecording
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return runtime.Interpreter.from_bytes(bytes(path_or_bytes), intrepreter_config=cfg)
    return runtime.Interpreter.from_file(str(path_or_bytes), intrepreter_config=cfg)


def _tensor_indices(buf: bytes) -> dict[str, int]:
    sg = tflite.Model.GetRootAs(buf, 0).Subgraphs(0)
    return {sg.Tensors(i).Name().decode(): i for i in range(sg.TensorsLength())}


# =============================================================================
# The five MLPerf Tiny models
# =============================================================================

@pytest.fixture(scope="module")
def graphs():
    return {}


def _graph(graphs, key):
    if key not in graphs:
        graphs[key] = load_tflite(_model(key))
    return graphs[key]


@pytest.mark.parametrize("key", list(MLPERF))
def test_mlperf_loads_with_litert_ops_shapes_and_quant(graphs, key):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    path = _model(key)
    g = _graph(graphs, key)
    assert all(n.domain == "edgec.q" for n in g.nodes)
    assert [n.attrs["tflite_op"] for n in g.nodes] == EXPECTED_OPS[key]

    it = litert.Interpreter(model_path=str(path), experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    assert [o["op_name"] for o in it._get_ops_details()] == EXPECTED_OPS[key]
    details = {d["name"]: d for d in it.get_tensor_details()}
    assert len(details) == len(it.get_tensor_details()), "tensor names are unique in these models"
    for name, t in g.tensors.items():
        d = details[name]
        assert tuple(d["shape"]) == t.shape, name
        assert np.dtype(d["dtype"]).name == t.dtype, name
        qp = d["quantization_parameters"]
        if len(qp["scales"]):
            assert t.quant is not None, name
            np.testing.assert_array_equal(t.quant.scale, qp["scales"])
            np.testing.assert_array_equal(t.quant.zero_point, qp["zero_points"])
            assert t.quant.axis == qp["quantized_dimension"]
        else:
            assert t.quant is None, name
    assert [details[n]["index"] for n in g.inputs] == [d["index"] for d in it.get_input_details()]
    assert [details[n]["index"] for n in g.outputs] == [d["index"] for d in it.get_output_details()]
    for n in g.nodes:  # every node has a MAC count and its op bundle
        d = lookup(n.op, n.domain)
        assert d is not None and d.macs(n, [g.tensors[i] if i else None for i in n.inputs], [g.tensors[o] for o in n.outputs]) >= 0


def test_mlperf_macs(graphs):
    def macs(g):
        return sum(lookup(n.op, n.domain).macs(n, [g.tensors[i] if i else None for i in n.inputs], [g.tensors[o] for o in n.outputs])
                   for n in g.nodes)

    # published MLPerf Tiny figures: kws DS-CNN 2.7 M, vww 7.5 M, resnet 12.5 M, ad01 0.26 M MACs
    assert 2.5e6 < macs(_graph(graphs, "kws")) < 3.0e6
    assert 7.0e6 < macs(_graph(graphs, "vww")) < 8.0e6
    assert 12.0e6 < macs(_graph(graphs, "resnet")) < 13.0e6
    assert 0.25e6 < macs(_graph(graphs, "ad01")) < 0.28e6


def test_mlperf_same_padding_and_attrs(graphs):
    g = _graph(graphs, "vww")
    first = g.nodes[0]  # 96x96 input, 3x3 stride 2 SAME: total pad 1, all of it at the end
    assert first.attrs["padding"] == "SAME" and first.attrs["pads"] == (0, 0, 1, 1) and first.attrs["strides"] == (2, 2)
    k = _graph(graphs, "kws").nodes[0]  # 49x10 input, 10x4 stride 2 SAME
    assert k.attrs["pads"] == (4, 1, 5, 1)
    assert k.attrs["fused_activation"] == "RELU" and (k.attrs["act_min"], k.attrs["act_max"]) == (-128, 127)
    assert len(k.attrs["out_mult"]) == 64 and all((1 << 30) <= m < (1 << 31) for m in k.attrs["out_mult"])
    dw = _graph(graphs, "str_ww").nodes[0]
    assert dw.op == "DepthwiseConv2D" and dw.attrs["depth_multiplier"] == 1 and dw.attrs["padding"] == "VALID"
    assert lookup("Reshape", "edgec.q").alias


@pytest.mark.parametrize("key", ["kws", "resnet", "ad01", "str_ww", "vww"])
def test_mlperf_bit_exact_vs_tflite_micro(graphs, key):
    """Random int8 inputs: outputs identical to TFLite Micro (0 differing bytes), and
    every intermediate tensor too."""
    path = _model(key)
    g = _graph(graphs, key)
    it = _tflm(path, preserve=True)
    index = _tensor_indices(path.read_bytes())
    rng = np.random.default_rng(1234)
    x_t = g.tensors[g.inputs[0]]
    differing = compared = 0
    for _ in range(RUNS[key]):
        x = rng.integers(-128, 128, x_t.shape, dtype=np.int8)
        it.set_input(x, 0)
        it.invoke()
        ref = it.get_output(0)
        vals = run_reference(g, {g.inputs[0]: x})
        out = vals[g.outputs[0]]
        assert out.dtype == ref.dtype and out.shape == tuple(ref.shape)
        differing += int(np.count_nonzero(out != ref))
        compared += out.size
        for n in g.nodes:
            for o in n.outputs:
                inter = it.GetTensor(index[o], 0)["tensor_data"]
                assert np.array_equal(np.asarray(inter).reshape(vals[o].shape), vals[o]), f"{key}: {n.name} ({n.op}) differs from TFLM"
    assert differing == 0, f"{key}: {differing}/{compared} output bytes differ from TFLite Micro"


# =============================================================================
# A small .tflite writer for single-op models
# =============================================================================

_TYPES = {"float32": "FLOAT32", "int8": "INT8", "int32": "INT32", "int64": "INT64", "int16": "INT16", "uint8": "UINT8"}


def _fb(module: str):
    return importlib.import_module(f"tflite.{module}")


def build_tflite(tensors: list[dict], ops: list[dict], inputs: list[int], outputs: list[int], version: int = 3) -> bytes:
    """tensors: {name, shape, dtype, data?, scale?, zp?, axis?, variable?};
    ops: {op: BUILTIN name or ('CUSTOM', code), inputs, outputs, options: (Name, {Field: value}) | None}."""
    b = flatbuffers.Builder(4096)

    def vec_i32(v):
        return b.CreateNumpyVector(np.asarray(v, np.int32))

    def vec_tables(start, offs):
        start(b, len(offs))
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    # buffers (0 is the empty sentinel)
    buf_offs, buf_index = [], {}
    _fb("Buffer").BufferStart(b)
    buf_offs.append(_fb("Buffer").BufferEnd(b))
    for k, t in enumerate(tensors):
        if t.get("data") is not None:
            data = b.CreateNumpyVector(np.frombuffer(np.ascontiguousarray(t["data"]).tobytes(), np.uint8))
            _fb("Buffer").BufferStart(b)
            _fb("Buffer").BufferAddData(b, data)
            buf_index[k] = len(buf_offs)
            buf_offs.append(_fb("Buffer").BufferEnd(b))

    T, Q = _fb("Tensor"), _fb("QuantizationParameters")
    t_offs = []
    for k, t in enumerate(tensors):
        name = b.CreateString(t["name"])
        shape = vec_i32(t["shape"])
        qoff = None
        if t.get("scale") is not None:
            sc = b.CreateNumpyVector(np.asarray(t["scale"], np.float32).reshape(-1))
            zp = b.CreateNumpyVector(np.asarray(t.get("zp", 0), np.int64).reshape(-1))
            Q.QuantizationParametersStart(b)
            Q.QuantizationParametersAddScale(b, sc)
            Q.QuantizationParametersAddZeroPoint(b, zp)
            Q.QuantizationParametersAddQuantizedDimension(b, t.get("axis", 0))
            qoff = Q.QuantizationParametersEnd(b)
        T.TensorStart(b)
        T.TensorAddShape(b, shape)
        T.TensorAddType(b, getattr(tflite.TensorType, _TYPES[t["dtype"]]))
        T.TensorAddBuffer(b, buf_index.get(k, 0))
        T.TensorAddName(b, name)
        if qoff is not None:
            T.TensorAddQuantization(b, qoff)
        if t.get("variable"):
            T.TensorAddIsVariable(b, True)
        t_offs.append(T.TensorEnd(b))

    codes: list = []
    op_offs = []
    O = _fb("Operator")
    for op in ops:
        key = op["op"]
        if key not in codes:
            codes.append(key)
        opt_off, opt_type = None, 0
        if op.get("options"):
            oname, fields = op["options"]
            m = _fb(oname)
            fields = {f: (vec_i32(v) if isinstance(v, (list, tuple)) else v) for f, v in fields.items()}
            getattr(m, f"{oname}Start")(b)
            for f, v in fields.items():
                getattr(m, f"{oname}Add{f}")(b, v)
            opt_off = getattr(m, f"{oname}End")(b)
            opt_type = getattr(tflite.BuiltinOptions, oname)
        ins = vec_i32(op["inputs"])
        outs = vec_i32(op["outputs"])
        O.OperatorStart(b)
        O.OperatorAddOpcodeIndex(b, codes.index(key))
        O.OperatorAddInputs(b, ins)
        O.OperatorAddOutputs(b, outs)
        if opt_off is not None:
            O.OperatorAddBuiltinOptionsType(b, opt_type)
            O.OperatorAddBuiltinOptions(b, opt_off)
        op_offs.append(O.OperatorEnd(b))

    OC = _fb("OperatorCode")
    code_offs = []
    for key in codes:
        custom = b.CreateString(key[1]) if isinstance(key, tuple) else None
        code = tflite.BuiltinOperator.CUSTOM if custom else getattr(tflite.BuiltinOperator, key)
        OC.OperatorCodeStart(b)
        OC.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        OC.OperatorCodeAddBuiltinCode(b, code)
        OC.OperatorCodeAddVersion(b, 1)
        if custom is not None:
            OC.OperatorCodeAddCustomCode(b, custom)
        code_offs.append(OC.OperatorCodeEnd(b))

    S = _fb("SubGraph")
    tv = vec_tables(S.SubGraphStartTensorsVector, t_offs)
    ov = vec_tables(S.SubGraphStartOperatorsVector, op_offs)
    iv, outv = vec_i32(inputs), vec_i32(outputs)
    sname = b.CreateString("main")
    S.SubGraphStart(b)
    S.SubGraphAddTensors(b, tv)
    S.SubGraphAddInputs(b, iv)
    S.SubGraphAddOutputs(b, outv)
    S.SubGraphAddOperators(b, ov)
    S.SubGraphAddName(b, sname)
    sg = S.SubGraphEnd(b)

    M = _fb("Model")
    cv = vec_tables(M.ModelStartOperatorCodesVector, code_offs)
    sv = vec_tables(M.ModelStartSubgraphsVector, [sg])
    bv = vec_tables(M.ModelStartBuffersVector, buf_offs)
    desc = b.CreateString("edgec test model")
    M.ModelStart(b)
    M.ModelAddVersion(b, version)
    M.ModelAddOperatorCodes(b, cv)
    M.ModelAddSubgraphs(b, sv)
    M.ModelAddDescription(b, desc)
    M.ModelAddBuffers(b, bv)
    b.Finish(M.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def act(name, shape, scale, zp, dtype="int8"):
    return dict(name=name, shape=list(shape), dtype=dtype, scale=[scale], zp=[zp])


def const(name, data, scale=None, zp=None, axis=0):
    d = dict(name=name, shape=list(np.shape(data)), dtype=np.asarray(data).dtype.name, data=np.asarray(data))
    if scale is not None:
        d.update(scale=list(np.atleast_1d(scale)), zp=list(np.atleast_1d(zp if zp is not None else 0) * np.ones(np.size(scale), np.int64)), axis=axis)
    return d


def _check_single(tmp_path, tensors, ops, inputs, outputs, feeds: list[np.ndarray], name="m"):
    """Load with edgec, run NumPy references and TFLM on the same inputs: identical bytes."""
    data = build_tflite(tensors, ops, inputs, outputs)
    p = tmp_path / f"{name}.tflite"
    p.write_bytes(data)
    g = load_tflite(p)
    it = _tflm(data)
    for k, x in enumerate(feeds):
        it.set_input(x, k)
    it.invoke()
    vals = run_reference(g, dict(zip(g.inputs, feeds)))
    for k, o in enumerate(g.outputs):
        ref = it.get_output(k)
        ours = vals[o]
        assert ours.dtype == ref.dtype and ours.shape == tuple(ref.shape), (ours.shape, ref.shape)
        diff = np.count_nonzero(ours != ref)
        assert diff == 0, f"{name}: {diff}/{ref.size} elements differ from TFLM\nours {ours.ravel()[:16]}\ntflm {ref.ravel()[:16]}"
    return g


RNG = np.random.default_rng(7)


def _i8(shape):
    return RNG.integers(-128, 128, shape, dtype=np.int8)


# ---- convolutions -------------------------------------------------------------------

@pytest.mark.parametrize("stride,dilation,padding,act_fn", [
    (1, 1, 0, 3),  # SAME, RELU6
    (2, 1, 0, 1),  # SAME stride 2, RELU
    (2, 2, 0, 0),  # SAME, dilated
    (3, 1, 1, 2),  # VALID stride 3, RELU_N1_TO_1
    (1, 2, 1, 0),  # VALID dilated
])
def test_conv2d_vs_tflm(tmp_path, stride, dilation, padding, act_fn):
    x_shape, oc, kh, kw = (1, 11, 10, 5), 6, 3, 2
    w = _i8((oc, kh, kw, 5))
    wscale = RNG.uniform(0.002, 0.02, oc).astype(np.float32)
    bias = RNG.integers(-2000, 2000, oc).astype(np.int32)
    _, h, wd, _ = x_shape
    oh = tflite_padding(padding, stride, dilation, h, kh)[0]
    ow = tflite_padding(padding, stride, dilation, wd, kw)[0]
    tensors = [
        act("x", x_shape, 0.05, 3),
        const("w", w, wscale, 0, axis=0),
        const("b", bias, wscale * np.float32(0.05), 0),
        act("y", (1, oh, ow, oc), 0.07, -5),
    ]
    opts = ("Conv2DOptions", dict(Padding=padding, StrideH=stride, StrideW=stride, DilationHFactor=dilation,
                                  DilationWFactor=dilation, FusedActivationFunction=act_fn))
    ops = [dict(op="CONV_2D", inputs=[0, 1, 2], outputs=[3], options=opts)]
    for _ in range(3):
        _check_single(tmp_path, tensors, ops, [0], [3], [_i8(x_shape)], name=f"conv_{stride}_{dilation}_{padding}")


def test_grouped_conv2d_vs_tflm(tmp_path):
    # CONV_2D with filter depth 3 on 6 input channels: 2 groups (TFLM supports it)
    w = _i8((4, 3, 3, 3))
    wscale = RNG.uniform(0.002, 0.02, 4).astype(np.float32)
    tensors = [act("x", (1, 6, 6, 6), 0.05, 1), const("w", w, wscale, 0, axis=0),
               const("b", RNG.integers(-100, 100, 4).astype(np.int32), wscale * np.float32(0.05), 0), act("y", (1, 6, 6, 4), 0.05, 0)]
    ops = [dict(op="CONV_2D", inputs=[0, 1, 2], outputs=[3], options=("Conv2DOptions", dict(Padding=0, StrideH=1, StrideW=1)))]
    _check_single(tmp_path, tensors, ops, [0], [3], [_i8((1, 6, 6, 6))], name="grouped")


@pytest.mark.parametrize("dm,stride,padding", [(2, 2, 0), (1, 1, 0), (3, 1, 1)])
def test_depthwise_vs_tflm(tmp_path, dm, stride, padding):
    x_shape = (1, 9, 8, 4)
    oc = 4 * dm
    w = _i8((1, 3, 3, oc))
    wscale = RNG.uniform(0.002, 0.02, oc).astype(np.float32)
    bias = RNG.integers(-500, 500, oc).astype(np.int32)
    oh = tflite_padding(padding, stride, 1, 9, 3)[0]
    ow = tflite_padding(padding, stride, 1, 8, 3)[0]
    tensors = [act("x", x_shape, 0.03, -10), const("w", w, wscale, 0, axis=3), const("b", bias, wscale * np.float32(0.03), 0),
               act("y", (1, oh, ow, oc), 0.02, 7)]
    opts = ("DepthwiseConv2DOptions", dict(Padding=padding, StrideH=stride, StrideW=stride, DepthMultiplier=dm,
                                           DilationHFactor=1, DilationWFactor=1, FusedActivationFunction=1))
    ops = [dict(op="DEPTHWISE_CONV_2D", inputs=[0, 1, 2], outputs=[3], options=opts)]
    for _ in range(3):
        _check_single(tmp_path, tensors, ops, [0], [3], [_i8(x_shape)], name=f"dw_{dm}_{stride}_{padding}")


def test_fully_connected_per_channel_and_keep_dims_vs_tflm(tmp_path):
    w = _i8((7, 12))
    wscale = RNG.uniform(0.005, 0.02, 7).astype(np.float32)
    bias = RNG.integers(-300, 300, 7).astype(np.int32)
    tensors = [act("x", (2, 3, 12), 0.1, 4), const("w", w, wscale, 0, axis=0), const("b", bias, wscale * np.float32(0.1), 0),
               act("y", (2, 3, 7), 0.2, -3)]
    ops = [dict(op="FULLY_CONNECTED", inputs=[0, 1, 2], outputs=[3],
                options=("FullyConnectedOptions", dict(FusedActivationFunction=3, KeepNumDims=True)))]
    for _ in range(3):
        g = _check_single(tmp_path, tensors, ops, [0], [3], [_i8((2, 3, 12))], name="fc_pc")
    assert len(g.nodes[0].attrs["out_mult"]) == 7


def test_fully_connected_no_bias_flattening_vs_tflm(tmp_path):
    w = _i8((5, 24))
    tensors = [act("x", (1, 2, 3, 4), 0.1, -128), const("w", w, 0.01, 0), act("y", (1, 5), 0.3, 2)]
    ops = [dict(op="FULLY_CONNECTED", inputs=[0, 1, -1], outputs=[2], options=("FullyConnectedOptions", dict()))]
    _check_single(tmp_path, tensors, ops, [0], [2], [_i8((1, 2, 3, 4))], name="fc_nobias")


# ---- pooling ----------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("padding,stride,k", [(0, 2, 3), (0, 1, 2), (1, 2, 2), (0, 3, 4)])
def test_pool_vs_tflm(tmp_path, op, padding, stride, k):
    x_shape = (1, 7, 9, 3)
    oh = tflite_padding(padding, stride, 1, 7, k)[0]
    ow = tflite_padding(padding, stride, 1, 9, k)[0]
    tensors = [act("x", x_shape, 0.05, -2), act("y", (1, oh, ow, 3), 0.05, -2)]
    opts = ("Pool2DOptions", dict(Padding=padding, StrideH=stride, StrideW=stride, FilterHeight=k, FilterWidth=k,
                                  FusedActivationFunction=3))
    for _ in range(3):
        _check_single(tmp_path, tensors, [dict(op=op, inputs=[0], outputs=[1], options=opts)], [0], [1], [_i8(x_shape)], name=f"pool_{op}")


# ---- softmax / logistic / tanh ------------------------------------------------------------

@pytest.mark.parametrize("scale,beta", [(0.05, 1.0), (0.3, 1.0), (0.01, 2.0), (0.12, 0.5)])
def test_softmax_vs_tflm(tmp_path, scale, beta):
    tensors = [act("x", (4, 37), scale, 5), act("y", (4, 37), 1.0 / 256, -128)]
    ops = [dict(op="SOFTMAX", inputs=[0], outputs=[1], options=("SoftmaxOptions", dict(Beta=beta)))]
    for _ in range(3):
        _check_single(tmp_path, tensors, ops, [0], [1], [_i8((4, 37))], name="softmax")


@pytest.mark.parametrize("op,oscale,ozp", [("LOGISTIC", 1.0 / 256, -128), ("TANH", 1.0 / 128, 0)])
@pytest.mark.parametrize("scale,zp", [(0.05, 0), (0.1, -20), (0.02, 30), (0.25, 0)])
def test_logistic_tanh_vs_tflm(tmp_path, op, oscale, ozp, scale, zp):
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    tensors = [act("x", (1, 256), scale, zp), act("y", (1, 256), oscale, ozp)]
    _check_single(tmp_path, tensors, [dict(op=op, inputs=[0], outputs=[1])], [0], [1], [x], name=op.lower())


# ---- elementwise --------------------------------------------------------------------------

@pytest.mark.parametrize("op,opts", [("ADD", "AddOptions"), ("MUL", "MulOptions")])
@pytest.mark.parametrize("bshape", [(1, 4, 5, 6), (1, 1, 1, 6), (1, 4, 1, 1)])
def test_add_mul_vs_tflm(tmp_path, op, opts, bshape):
    tensors = [act("a", (1, 4, 5, 6), 0.04, -7), act("b", bshape, 0.11, 12), act("y", (1, 4, 5, 6), 0.09, 3)]
    ops = [dict(op=op, inputs=[0, 1], outputs=[2], options=(opts, dict(FusedActivationFunction=1)))]
    for _ in range(3):
        _check_single(tmp_path, tensors, ops, [0, 1], [2], [_i8((1, 4, 5, 6)), _i8(bshape)], name=op.lower())


def test_concat_pad_slice_reshape_vs_tflm(tmp_path):
    tensors = [
        act("a", (1, 4, 3, 2), 0.1, -1),
        act("b", (1, 4, 3, 5), 0.1, -1),
        act("c", (1, 4, 3, 7), 0.1, -1),
        const("paddings", np.array([[0, 0], [1, 2], [0, 1], [3, 0]], np.int32)),
        act("p", (1, 7, 4, 10), 0.1, -1),
        const("begin", np.array([0, 6, 1, 0], np.int32)),
        const("end", np.array([1, 0, 4, 9], np.int32)),
        const("strides", np.array([1, -2, 1, 3], np.int32)),
        act("s", (3, 3, 4), 0.1, -1),
        const("shape", np.array([9, 4], np.int32)),
        act("r", (9, 4), 0.1, -1),
    ]
    ops = [
        dict(op="CONCATENATION", inputs=[0, 1], outputs=[2], options=("ConcatenationOptions", dict(Axis=-1))),
        dict(op="PAD", inputs=[2, 3], outputs=[4]),
        dict(op="STRIDED_SLICE", inputs=[4, 5, 6, 7], outputs=[8],
             options=("StridedSliceOptions", dict(BeginMask=0, EndMask=8, ShrinkAxisMask=1))),
        dict(op="RESHAPE", inputs=[8, 9], outputs=[10]),
    ]
    for _ in range(2):
        g = _check_single(tmp_path, tensors, ops, [0, 1], [10], [_i8((1, 4, 3, 2)), _i8((1, 4, 3, 5))], name="copyops")
    assert [n.op for n in g.nodes] == ["Concatenation", "Pad", "StridedSlice", "Reshape"]
    assert g.nodes[0].attrs["axis"] == 3 and g.nodes[1].attrs["pad_value"] == -1


def test_reshape_options_and_constant_folding_vs_tflm(tmp_path):
    c = _i8((2, 3))
    tensors = [act("x", (1, 6), 0.1, 2), dict(const("c", c, 0.2, -3)), act("cr", (1, 6), 0.2, -3), act("y", (1, 6), 0.15, 0)]
    ops = [dict(op="RESHAPE", inputs=[1], outputs=[2], options=("ReshapeOptions", dict(NewShape=[1, -1]))),
           dict(op="ADD", inputs=[0, 2], outputs=[3], options=("AddOptions", dict()))]
    g = _check_single(tmp_path, tensors, ops, [0], [3], [_i8((1, 6))], name="fold")
    assert [n.op for n in g.nodes] == ["Add"]  # RESHAPE of a constant is folded into flash data
    assert g.tensors["cr"].is_const and g.tensors["cr"].shape == (1, 6) and g.tensors["cr"].quant is not None


def test_inconsistent_attributes_are_refused(tmp_path):
    tensors = [act("x", (1, 5, 5, 4), 0.1, 0), const("w", _i8((1, 3, 3, 4)), 0.01, 0), act("y", (1, 5, 5, 4), 0.1, 0),
               act("r", (1, 100), 0.1, 0)]
    ops = [dict(op="DEPTHWISE_CONV_2D", inputs=[0, 1, -1], outputs=[2],
                options=("DepthwiseConv2DOptions", dict(Padding=0, StrideH=1, StrideW=1, DepthMultiplier=2))),
           dict(op="RESHAPE", inputs=[2], outputs=[3], options=("ReshapeOptions", dict(NewShape=[1, 50, 2])))]
    p = tmp_path / "bad.tflite"
    p.write_bytes(build_tflite(tensors, ops, [0], [3]))
    with pytest.raises(UnsupportedOpsError) as e:
        load_tflite(p)
    reasons = {n: why for n, _, _, _, why in e.value.nodes}
    assert "depth_multiplier 2 disagrees" in reasons["depthwise_conv_2d_0"]
    assert "disagrees with the declared output shape" in reasons["reshape_1"]


def test_quantize_dequantize_vs_tflm(tmp_path):
    tensors = [
        dict(name="f", shape=[2, 50], dtype="float32"),
        act("q1", (2, 50), 0.037, 3),
        act("q2", (2, 50), 0.011, -40),
        dict(name="d", shape=[2, 50], dtype="float32"),
    ]
    ops = [dict(op="QUANTIZE", inputs=[0], outputs=[1]), dict(op="QUANTIZE", inputs=[1], outputs=[2]),
           dict(op="DEQUANTIZE", inputs=[2], outputs=[3])]
    x = np.concatenate([np.linspace(-6, 6, 50), (np.arange(50) - 25) * np.float32(0.037) * 0.5]).astype(np.float32).reshape(2, 50)
    _check_single(tmp_path, tensors, ops, [0], [3], [x], name="qdq")


def test_float_interface_model_compiles_bit_exact(tmp_path):
    """The TFLite converter's default int8 model keeps a float interface: QUANTIZE at
    the start, DEQUANTIZE at the end. Compiled (runtime_c kernels
    edgec_quantize_f32_s8 / edgec_requantize_s8 / edgec_dequantize_s8_f32), the host
    build equals TFLite Micro bit for bit on float inputs, rounding ties included."""
    from edgec.compiler import compile_model
    from edgec.hostrun import host_model_for

    oc, sx = 6, np.float32(0.037)
    wscale = RNG.uniform(0.002, 0.02, oc).astype(np.float32)
    tensors = [
        dict(name="f", shape=[1, 6, 6, 3], dtype="float32"),
        act("q", (1, 6, 6, 3), float(sx), 3),
        act("q2", (1, 6, 6, 3), 0.05, -7),
        const("w", _i8((oc, 3, 3, 3)), wscale, 0, axis=0),
        const("b", RNG.integers(-2000, 2000, oc).astype(np.int32), wscale * np.float32(0.05), 0),
        act("y", (1, 6, 6, oc), 0.07, -5),
        dict(name="d", shape=[1, 6, 6, oc], dtype="float32"),
    ]
    ops = [dict(op="QUANTIZE", inputs=[0], outputs=[1]), dict(op="QUANTIZE", inputs=[1], outputs=[2]),
           dict(op="CONV_2D", inputs=[2, 3, 4], outputs=[5],
                options=("Conv2DOptions", dict(Padding=0, StrideH=1, StrideW=1, DilationHFactor=1, DilationWFactor=1))),
           dict(op="DEQUANTIZE", inputs=[5], outputs=[6])]
    data = build_tflite(tensors, ops, [0], [6])
    p = tmp_path / "float_io.tflite"
    p.write_bytes(data)
    r = compile_model(p, "host", build=False)
    assert [L.ccall.function for L in r.layers] == ["edgec_quantize_f32_s8", "edgec_requantize_s8", "edgec_convolve_s8",
                                                    "edgec_dequantize_s8_f32"]
    host = host_model_for(r)
    it = _tflm(data)
    rng = np.random.default_rng(5)
    differing = 0
    try:
        for k in range(20):
            if k % 2:  # exact rounding ties of the input quantization, and beyond the int8 range
                x = ((rng.integers(-140, 140, (1, 6, 6, 3)) + 0.5) * sx).astype(np.float32)
            else:
                x = (rng.standard_normal((1, 6, 6, 3)) * 2).astype(np.float32)
            it.set_input(x, 0)
            it.invoke()
            want = np.asarray(it.get_output(0))
            got = host.run([x])[0]
            assert got.dtype == np.float32 and got.shape == want.shape
            differing += int(np.count_nonzero(got.view(np.int32) != want.view(np.int32)))
    finally:
        host.close()
    assert differing == 0
    for target in ("cortex-m4", "cortex-m0plus"):
        rt = compile_model(p, target, out_dir=tmp_path / target)
        assert rt.build is not None and rt.totals.flash_bytes > 0


def test_multi_output_graph_and_fused_relu6_clamp(tmp_path):
    # two outputs; RELU6 clamp computed with roundf(6 / scale) like TFLite
    tensors = [act("a", (1, 8), 0.05, -128), act("b", (1, 8), 0.05, -128), act("y", (1, 8), 0.03, -128), act("z", (1, 8), 0.04, -100)]
    ops = [dict(op="ADD", inputs=[0, 1], outputs=[2], options=("AddOptions", dict(FusedActivationFunction=3))),
           dict(op="MUL", inputs=[2, 0], outputs=[3], options=("MulOptions", dict(FusedActivationFunction=0)))]
    g = _check_single(tmp_path, tensors, ops, [0, 1], [2, 3], [_i8((1, 8)), _i8((1, 8))], name="multi")
    assert (g.nodes[0].attrs["act_min"], g.nodes[0].attrs["act_max"]) == (-128, -128 + 200)


# =============================================================================
# Import-time arithmetic
# =============================================================================

def test_tflite_padding_formula():
    # out, before, after
    assert tflite_padding(0, 2, 1, 96, 3) == (48, 0, 1)
    assert tflite_padding(0, 1, 1, 32, 3) == (32, 1, 1)
    assert tflite_padding(0, 2, 1, 49, 10) == (25, 4, 5)
    assert tflite_padding(0, 1, 2, 10, 3) == (10, 2, 2)
    assert tflite_padding(1, 2, 1, 7, 3) == (3, 0, 0)
    assert tflite_padding(1, 3, 1, 10, 2) == (3, 0, 0)
    for inp in range(1, 20):
        for k in range(1, 6):
            for s in range(1, 4):
                for d in range(1, 3):
                    out, b, a = tflite_padding(0, s, d, inp, k)
                    total = max((out - 1) * s + (k - 1) * d + 1 - inp, 0)
                    assert out == -(-inp // s) and b == total // 2 and a == total - total // 2


def test_quantize_multiplier_and_activation_range():
    assert q.quantize_multiplier(0.5) == (1 << 30, 0)
    assert q.quantize_multiplier(0.0) == (0, 0)
    assert q.quantize_multiplier(1.0) == (1 << 30, 1)
    m, s = q.quantize_multiplier(0.0123)
    assert abs(m * 2.0 ** (s - 31) - 0.0123) < 1e-9
    m, s = q.quantize_multiplier(1 - 2.0 ** -40)  # rounds up to 2^31: renormalised
    assert (m, s) == (1 << 30, 1)
    assert q.quantize_multiplier(2.0 ** -40) == (0, 0)  # flushed like TFLite
    assert q.activation_range("RELU", 0.1, -128) == (-128, 127)
    assert q.activation_range("RELU", 0.1, 3) == (3, 127)
    assert q.activation_range("RELU6", 0.05, -128) == (-128, -8)
    assert q.activation_range("RELU_N1_TO_1", 0.01, 0) == (-100, 100)
    # double rounding (TFLM's build): SaturatingRoundingDoublingHighMul rounds ties up, then
    # RoundingDivideByPOT rounds ties away from zero, so 5 * 0.25 = 1.25 gives 2 (2.5 -> 3 -> 2),
    # where a single rounding would give 1; -5 * 0.25 gives -1 (-2.5 -> -2 -> -1)
    assert q.mbqm(np.array([3, -3, 5, -5]), 1 << 30, -1).tolist() == [1, -1, 2, -1]
    assert q.mbqm(np.array([7]), 1 << 30, 2).tolist() == [14]


# =============================================================================
# Bad input
# =============================================================================

def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_tflite(tmp_path / "nope.tflite")
    with pytest.raises(InputFileError, match="not a file"):
        load_tflite(tmp_path)


def test_garbage_and_non_tflite_files(tmp_path):
    cases = {
        "empty.tflite": b"",
        "short.tflite": b"TFL3",
        "random.tflite": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "text.tflite": b"hello, this is not a model\n" * 20,
        "onnx.tflite": b"\x08\x07\x12\x07pytorch" + bytes(100),
        # the right identifier, garbage everywhere else
        "fake.tflite": b"\xff\xff\xff\x7fTFL3" + bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8)),
        "zeros.tflite": b"\x00\x00\x00\x00TFL3" + bytes(64),
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(InputFileError) as e:
            load_tflite(p)
        msg = e.value.one_line()
        assert "\n" not in msg and name in msg, msg


def test_truncated_files(tmp_path):
    data = _model("kws").read_bytes()
    for cut in (7, 16, 100, 1000, len(data) // 3, len(data) // 2, len(data) - 4000, len(data) - 1):
        p = tmp_path / f"cut{cut}.tflite"
        p.write_bytes(data[:cut])
        with pytest.raises(InputFileError, match="truncated|not a TFLite|outside|corrupt"):
            load_tflite(p)


def test_corrupted_bytes_never_crash(tmp_path):
    """Random byte flips: either the model still loads or a clear EdgecError, never a traceback."""
    data = bytearray(_model("str_ww").read_bytes())
    rng = np.random.default_rng(3)
    outcomes = {"ok": 0, "error": 0}
    header = 2048  # the flatbuffer tables sit at the start/end; flip there and anywhere
    for k in range(150):
        d = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(8, header)) if k % 2 else int(rng.integers(8, len(d)))
            d[pos] = int(rng.integers(0, 256))
        p = tmp_path / "flip.tflite"
        p.write_bytes(bytes(d))
        try:
            load_tflite(p)
            outcomes["ok"] += 1
        except EdgecError as e:
            assert e.one_line()
            outcomes["error"] += 1
    assert outcomes["error"] > 0


def test_unsupported_ops_reported_all_at_once(tmp_path):
    tensors = [
        act("x", (1, 8), 0.1, 0),
        act("h", (1, 8), 0.1, 0),
        act("y", (1, 8), 0.1, 0),
        dict(name="f", shape=[1, 8], dtype="float32"),
        dict(name="z", shape=[1, 8], dtype="float32"),
        act("w", (1, 8), 0.1, 0),
    ]
    ops = [
        dict(op="HARD_SWISH", inputs=[0], outputs=[1]),
        dict(op=("CUSTOM", "MyOp"), inputs=[1], outputs=[2]),
        dict(op="DEQUANTIZE", inputs=[2], outputs=[3]),
        dict(op="LOGISTIC", inputs=[3], outputs=[4]),  # float logistic: refused
        dict(op="TANH", inputs=[0], outputs=[5]),  # int8 tanh with a wrong output scale: refused
    ]
    p = tmp_path / "unsup.tflite"
    p.write_bytes(build_tflite(tensors, ops, [0], [4, 5]))
    with pytest.raises(UnsupportedOpsError) as e:
        load_tflite(p)
    got = {(n, op, dom, opset) for n, op, dom, opset, _ in e.value.nodes}
    assert got == {("hard_swish_0", "HARD_SWISH", "tflite", 3), ("custom_1", "MyOp", "tflite", 3),
                   ("logistic_3", "LOGISTIC", "tflite", 3), ("tanh_4", "TANH", "tflite", 3)}
    msg = e.value.one_line()
    assert "4 unsupported node(s)" in msg and "domain 'tflite'" in msg and "float32 input" in msg and "scale 0.0078125" in msg


def test_state_variables_reported_precisely(tmp_path):
    tensors = [act("x", (1, 4), 0.1, 0), dict(name="state", shape=[1, 4], dtype="int8", scale=[0.1], zp=[0], variable=True),
               act("y", (1, 4), 0.1, 0)]
    ops = [dict(op="ADD", inputs=[0, 1], outputs=[2], options=("AddOptions", dict())),
           dict(op="ASSIGN_VARIABLE", inputs=[1, 2], outputs=[])]
    p = tmp_path / "state.tflite"
    p.write_bytes(build_tflite(tensors, ops, [0], [2]))
    with pytest.raises(UnsupportedOpsError) as e:
        load_tflite(p)
    reasons = {n: why for n, _, _, _, why in e.value.nodes}
    assert "variable tensor(s) ['state']" in reasons["add_0"]
    assert "resource variables (streaming state)" in reasons["assign_variable_1"]


def test_float_model_is_refused_with_every_op_listed():
    p = MODELS / "kws_ref_model_float32.tflite"
    if not p.exists():
        pytest.skip("float kws model not present")
    with pytest.raises(UnsupportedOpsError) as e:
        load_tflite(p)
    assert len(e.value.nodes) == 12  # all but RESHAPE, which is dtype-agnostic
    assert all("full-integer int8" in why for *_, why in e.value.nodes)


def test_onnx_ops_still_registered():
    assert lookup("Conv") is not None and lookup("Conv").domain == ""
    assert lookup("Conv2D", "edgec.q") is not None and lookup("Conv2D") is None
