"""Bad input: a clear one-line error, exit code 2, and no output folder."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from edgec.cli import main
from onnx_builders import f32, model, save


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def assert_one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert err.startswith("error:"), err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


@pytest.fixture
def out(tmp_path):
    return tmp_path / "out"


def test_missing_file(tmp_path, out):
    res = run(["compile", str(tmp_path / "nope.onnx"), "-o", str(out)])
    assert_one_line_error(res, "not found")
    assert not out.exists()


def test_not_onnx(tmp_path, out):
    p = tmp_path / "notes.onnx"
    p.write_text("this is not a protobuf at all \x00\xff" * 10)
    res = run(["compile", str(p), "-o", str(out)])
    assert_one_line_error(res, "not a valid ONNX model")
    assert not out.exists()


def test_truncated_protobuf(tmp_path, out, examples_dir):
    data = (examples_dir / "kws_dscnn.onnx").read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 3])
    res = run(["compile", str(p), "-o", str(out)])
    assert_one_line_error(res, "not a valid ONNX model")
    assert not out.exists()


def test_unsupported_ops_listed_all_at_once(tmp_path, out):
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok_relu"),
        helper.make_node("Erf", ["a"], ["b"], name="bad_erf"),
        helper.make_node("Relu", ["b"], ["c"], name="after"),
        helper.make_node("Einsum", ["c", "x"], ["y"], name="bad_einsum", equation="ij,ij->ij"),
    ]
    p = save(model(nodes, [f32("x", [4, 4])], [f32("y", [4, 4])]), tmp_path / "u.onnx")
    res = run(["compile", str(p), "-o", str(out)])
    assert_one_line_error(res, "2 unsupported node(s)", "bad_erf (Erf", "bad_einsum (Einsum", "opset 17")
    assert "ok_relu" not in res.stderr and "after" not in res.stderr
    assert not out.exists()


def test_dynamic_shape_needs_input_shape(tmp_path, out):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])
    p = save(model([helper.make_node("Relu", ["x"], ["y"])], [x], [y]), tmp_path / "dyn.onnx")
    res = run(["compile", str(p), "-o", str(out)])
    assert_one_line_error(res, "dynamic shape", "--input-shape x=")
    assert not out.exists()
    ok = run(["compile", str(p), "-o", str(out), "--input-shape", "x=2x8", "-q"])
    assert ok.exit_code == 0, ok.output
    assert "#define EDGEC_DYN_INPUT0_SIZE 16" in (out / "model.h").read_text()


def test_over_budget_refused_with_numbers(out, examples_dir):
    res = run(["compile", str(examples_dir / "kws_dscnn.onnx"), "-o", str(out), "--ram-kb", "16"])
    assert_one_line_error(res, "does not fit", "peak SRAM", "16,384 B")
    assert not out.exists()
    res = run(["compile", str(examples_dir / "kws_dscnn.onnx"), "-o", str(out), "--flash-kb", "32"])
    assert_one_line_error(res, "flash", "32,768 B")
    assert not out.exists()


def test_unknown_target(out, examples_dir):
    res = run(["compile", str(examples_dir / "kws_dscnn.onnx"), "-o", str(out), "--target", "cortex-m99"])
    assert_one_line_error(res, "unknown target 'cortex-m99'", "cortex-m7")
    assert not out.exists()


def test_existing_output_survives_failed_compile(tmp_path, examples_dir):
    out = tmp_path / "out"
    ok = run(["compile", str(examples_dir / "kws_dscnn.onnx"), "-o", str(out), "-q"])
    assert ok.exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = run(["compile", str(examples_dir / "kws_dscnn.onnx"), "-o", str(out), "--ram-kb", "1"])
    assert res.exit_code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_missing_external_data(tmp_path, out, examples_dir):
    p = tmp_path / "resnet8_32.onnx"
    p.write_bytes((examples_dir / "resnet8_32.onnx").read_bytes())  # without its .data file
    res = run(["compile", str(p), "-o", str(out)])
    assert_one_line_error(res, "external data")
    assert not out.exists()


def test_bad_input_shape_spec(tmp_path, out, examples_dir):
    res = run(["compile", str(examples_dir / "kws_dscnn.onnx"), "-o", str(out), "--input-shape", "input=abc"])
    assert_one_line_error(res, "bad --input-shape")


def test_validate_inputs_wrong_shape(tmp_path, examples_dir):
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((3, 7), np.float32))
    res = run(["validate", str(examples_dir / "kws_dscnn.onnx"), "--inputs", str(bad)])
    assert_one_line_error(res, "has shape (3, 7)")
