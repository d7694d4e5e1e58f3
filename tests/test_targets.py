"""Target definitions: every targets/*.toml loads and is consistent."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from edgec.errors import TargetError
from edgec.targets import Target, list_targets, load_target, targets_dir

EXPECTED = ["cortex-m0plus", "cortex-m3", "cortex-m33", "cortex-m4", "cortex-m55", "cortex-m7", "host"]


def test_targets_dir_is_repo_targets():
    d = targets_dir()
    assert d.is_dir()
    assert d == Path(__file__).resolve().parent.parent / "targets"


def test_list_targets_sorted_and_complete():
    names = [t.name for t in list_targets()]
    assert names == sorted(names)
    assert set(EXPECTED) <= set(names)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_target_loads(name):
    t = load_target(name)
    assert isinstance(t, Target)
    assert t.name == name
    assert t.description
    assert t.fpu in ("none", "sp", "dp")
    assert t.flash_kb > 0 and t.ram_kb > 0
    assert t.flash_bytes == t.flash_kb * 1024
    for flag in ("-O2", "-ffunction-sections", "-fdata-sections", "-fno-common", "-std=c99", "-Wall"):
        assert flag in t.cflags
    if t.is_host:
        assert t.compiler == "gcc"
        assert t.pointer_bits == 64
    else:
        assert t.compiler == "arm-none-eabi-gcc"
        assert t.pointer_bits == 32
        assert f"-mcpu={t.cpu}" in t.cflags
        assert "-mthumb" in t.cflags
        abi = "-mfloat-abi=soft" if t.fpu == "none" else "-mfloat-abi=hard"
        assert abi in t.cflags


def test_target_details():
    m7, m4, m33, m55, m0 = (load_target(n) for n in ("cortex-m7", "cortex-m4", "cortex-m33", "cortex-m55", "cortex-m0plus"))
    assert "-mfpu=fpv5-d16" in m7.cflags and m7.fpu == "dp" and m7.dsp
    assert "-mfpu=fpv4-sp-d16" in m4.cflags and m4.fpu == "sp"
    assert "-mfpu=fpv5-sp-d16" in m33.cflags and m33.fpu == "sp"
    assert m55.mve and not m7.mve
    assert m0.fpu == "none" and not m0.dsp and not m0.has_fpu
    assert (m7.flash_kb, m7.ram_kb) == (2048, 512)
    assert (m4.flash_kb, m4.ram_kb) == (1024, 192)
    assert load_target("host").is_host and not m7.is_host


def test_target_is_frozen_and_hashable():
    t = load_target("cortex-m4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "x"  # type: ignore[misc]
    assert t == load_target("cortex-m4")
    assert len({t, load_target("cortex-m4")}) == 1


def test_unknown_target_lists_known():
    with pytest.raises(TargetError) as ei:
        load_target("xyz")
    msg = str(ei.value)
    assert "unknown target 'xyz'" in msg
    assert "known: cortex-m0plus, cortex-m3" in msg
    for name in EXPECTED:
        assert name in msg


def test_unknown_target_rejects_paths():
    with pytest.raises(TargetError, match="unknown target"):
        load_target("../targets/cortex-m4")


def _copy_target(tmp_path: Path, name: str = "cortex-m4") -> Path:
    dst = tmp_path / f"{name}.toml"
    shutil.copy(targets_dir() / f"{name}.toml", dst)
    return dst


def test_load_from_other_directory(tmp_path):
    _copy_target(tmp_path)
    assert [t.name for t in list_targets(tmp_path)] == ["cortex-m4"]
    assert load_target("cortex-m4", tmp_path).fpu == "sp"


def test_missing_field_names_file_and_field(tmp_path):
    p = _copy_target(tmp_path)
    p.write_text("\n".join(ln for ln in p.read_text().splitlines() if not ln.startswith("ram_kb")))
    with pytest.raises(TargetError) as ei:
        load_target("cortex-m4", tmp_path)
    msg = str(ei.value)
    assert str(p) in msg and "memory.ram_kb" in msg and "missing" in msg


def test_missing_top_level_field(tmp_path):
    p = _copy_target(tmp_path)
    p.write_text("\n".join(ln for ln in p.read_text().splitlines() if not ln.startswith("compiler")))
    with pytest.raises(TargetError, match=r"cortex-m4\.toml.*'compiler' is missing"):
        load_target("cortex-m4", tmp_path)


@pytest.mark.parametrize(
    "old,new,needle",
    [
        ('fpu = "sp"', 'fpu = "half"', "features.fpu"),
        ("pointer_bits = 32", 'pointer_bits = "32"', "pointer_bits"),
        ("dsp = true", "dsp = 1", "features.dsp"),
        ('name = "cortex-m4"', 'name = "cortex-m5"', "must match the file name"),
        ("pointer_bits = 32", "pointer_bits = 32\nfrobnicate = 1", "unknown field"),
        ("cflags = [", "cflags = [1, ", "cflags"),
        ("flash_kb = 1024", "flash_kb = 0", "memory.flash_kb"),
        ("\n[memory]\n", "\n[memory\n", "invalid TOML"),
    ],
)
def test_malformed_target(tmp_path, old, new, needle):
    p = _copy_target(tmp_path)
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new, 1))
    with pytest.raises(TargetError) as ei:
        load_target("cortex-m4", tmp_path)
    assert needle in str(ei.value)
    assert str(p) in str(ei.value)
