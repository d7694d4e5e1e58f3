"""The same inputs give byte-identical generated files."""

from __future__ import annotations

from edgec.compiler import compile_model


def test_byte_identical_outputs(tmp_path, examples_dir):
    a = compile_model(examples_dir / "resnet8_32.onnx", "cortex-m7", out_dir=tmp_path / "a")
    b = compile_model(examples_dir / "resnet8_32.onnx", "cortex-m7", out_dir=tmp_path / "b")
    files_a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files_a == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert {"model.c", "model.h", "model_kernels.c", "model_kernels.h", "metadata.json", "edgec.mk", "CMakeLists.txt"} <= set(files_a)
    for name in files_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert a.out_dir != b.out_dir
