"""Every example model: the generated C, run on the host, matches onnxruntime,
and the cortex-m7 build fits the target's budget."""

from __future__ import annotations


import pytest

from edgec.compiler import compile_model
from edgec.validate import compare
from onnx_builders import float_examples

EXAMPLES = float_examples()


def test_examples_present():
    names = {p.stem for p in EXAMPLES}
    assert {"kws_dscnn", "mobilenetv2_96", "resnet8_32", "fc_autoencoder", "tiny_transformer"} <= names


@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.stem)
def test_example_matches_onnxruntime(model):
    r = compile_model(model, "host", build=False)
    rep = compare(model, r, runs=5, inputs=None, tolerance=1e-4, seed=1)
    for o in rep.outputs:
        assert o.max_rel <= 1e-4, (model.name, o)
        assert o.cosine > 0.99999, (model.name, o)


@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.stem)
def test_example_builds_for_cortex_m7(model, tmp_path):
    r = compile_model(model, "cortex-m7", out_dir=tmp_path / model.stem)
    t = r.totals
    assert t.flash_bytes >= t.weight_bytes  # weights really are in flash (rodata)
    assert r.build.sizes.bss >= t.arena_bytes  # the arena is the static .bss buffer
    assert t.peak_sram_bytes <= r.target.ram_kb * 1024
    assert t.max_stack_bytes < 1024, t.max_stack_function  # the MCU schedule keeps kernel stacks small
    assert (tmp_path / model.stem / "metadata.json").exists()
