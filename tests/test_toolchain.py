"""C toolchain driver: compile for targets, measure sizes and stack, host .so via ctypes."""

from __future__ import annotations

import ctypes
import dataclasses
import shutil
from pathlib import Path

import pytest

from edgec.build.elfsize import ObjectSizes, classify_section, elf_sections, elf_sizes
from edgec.build.toolchain import (
    BuildResult,
    StackFrame,
    build_host_shared_library,
    compile_objects,
    parse_stack_usage,
    toolchain_version,
)
from edgec.errors import BuildError
from edgec.targets import list_targets, load_target

HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_GCC = shutil.which("gcc") is not None
needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc not installed (make setup)")
needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="host gcc not installed")

TABLE_LEN = 100
SCRATCH_LEN = 256  # floats -> 1024 bytes of .bss

KERNEL_C = (
    "#include <stddef.h>\n"
    f"const float table[{TABLE_LEN}] = {{"
    + ", ".join(f"{0.5 + i}f" for i in range(TABLE_LEN))
    + "};\n"
    f"static float scratch[{SCRATCH_LEN}];\n"
    "void sink(float *p, int n);\n"
    "float kernel(const float *x, int n) {\n"
    "    float acc[64];\n"
    "    for (int i = 0; i < 64; i++) acc[i] = x[i] * table[(i * 7 + n) % 100];\n"
    "    sink(acc, 64);  /* acc escapes: it must live on the stack */\n"
    "    float s = 0.0f;\n"
    "    for (int i = 0; i < n; i++) { s += acc[i % 64]; scratch[i % 256] = s; }\n"
    "    return s + scratch[n % 256];\n"
    "}\n"
)

HELPER_C = "int helper(int a) { return a * 3 + HELPER_BIAS; }\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _target_params():
    out = []
    for t in list_targets():
        mark = needs_gcc if t.is_host else needs_arm
        out.append(pytest.param(t.name, marks=mark, id=t.name))
    return out


@pytest.mark.parametrize("target_name", ["cortex-m7", "cortex-m0plus", "host"])
def test_compile_kernel_sizes_and_stack(tmp_path, target_name):
    target = load_target(target_name)
    if shutil.which(target.compiler) is None:
        pytest.skip(f"{target.compiler} not installed")
    src = _write(tmp_path, "kernel.c", KERNEL_C)
    out = tmp_path / "out"
    res = compile_objects([src], target, out)

    assert isinstance(res, BuildResult)
    assert res.objects == [out / "kernel.o"] and res.objects[0].is_file()
    assert (out / "kernel.su").is_file()
    assert (out / "build.log").is_file()
    assert res.compiler == target.compiler
    assert res.compiler_version and res.compiler_version == toolchain_version(target.compiler)
    assert "-fstack-usage" in res.cflags
    assert all(f in res.cflags for f in target.cflags)

    s = res.sizes
    assert s.rodata >= TABLE_LEN * 4
    assert s.bss >= SCRATCH_LEN * 4
    assert s.text > 0
    assert s.flash == s.text + s.rodata + s.data
    assert s.ram == s.data + s.bss
    assert res.per_object == {"kernel.o": s}

    frames = {f.function: f for f in res.stack}
    k = frames["kernel"]
    assert k.bytes >= 64 * 4
    assert k.qualifier == "static" and k.is_static
    assert k.source.endswith("kernel.c")
    assert res.max_stack == res.stack[0]
    assert res.max_stack.function == "kernel"
    assert [f.bytes for f in res.stack] == sorted((f.bytes for f in res.stack), reverse=True)
    assert res.warnings == []


@needs_arm
def test_warnings_are_reported(tmp_path):
    src = _write(tmp_path, "w.c", "int f(int a) { int unused; return a; }\n")
    res = compile_objects([src], load_target("cortex-m33"), tmp_path / "out")
    assert len(res.warnings) == 1 and "unused" in res.warnings[0]


@pytest.mark.parametrize("target_name", _target_params())
def test_every_target_compiles(tmp_path, target_name):
    res = compile_objects([_write(tmp_path, "kernel.c", KERNEL_C)], load_target(target_name), tmp_path / "o")
    assert res.sizes.rodata >= TABLE_LEN * 4


def _arm_attributes(obj: Path) -> dict[str, object]:
    from elftools.elf.elffile import ELFFile

    with obj.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".ARM.attributes")
        return {
            a.tag: a.value
            for sub in sec.iter_subsections()
            for subsub in sub.iter_subsubsections()
            for a in subsub.iter_attributes()
        }


@needs_arm
@pytest.mark.parametrize("target_name", [t.name for t in list_targets() if not t.is_host])
def test_target_features_reach_the_object(tmp_path, target_name):
    """The objects' build attributes agree with the target's declared features."""
    t = load_target(target_name)
    res = compile_objects([_write(tmp_path, "kernel.c", KERNEL_C)], t, tmp_path / "o")
    attrs = _arm_attributes(res.objects[0])
    assert (attrs.get("TAG_ABI_VFP_ARGS") == 1) == t.has_fpu  # hard-float calling convention
    assert ("TAG_FP_ARCH" in attrs) == t.has_fpu
    assert ("TAG_MVE_ARCH" in attrs) == t.mve
    if t.mve:
        assert attrs["TAG_MVE_ARCH"] == 2  # MVE integer + float


@needs_arm
def test_several_sources_include_dirs_defines(tmp_path):
    inc = tmp_path / "include"
    inc.mkdir()
    _write(inc, "bias.h", "#define HELPER_BIAS_FROM_HEADER 1\n")
    a = _write(tmp_path, "kernel.c", KERNEL_C)
    b = _write(tmp_path, "helper.c", '#include "bias.h"\n' + HELPER_C)
    sub = tmp_path / "sub"
    sub.mkdir()
    c = _write(sub, "helper.c", '#include "bias.h"\nint helper2(void) { return HELPER_BIAS_FROM_HEADER; }\n')
    res = compile_objects([a, b, c], load_target("cortex-m4"), tmp_path / "out", [inc], {"HELPER_BIAS": "7"})
    assert [o.name for o in res.objects] == ["kernel.o", "helper.o", "helper_2.o"]
    assert set(res.per_object) == {"kernel.o", "helper.o", "helper_2.o"}
    assert res.sizes == ObjectSizes.total(list(res.per_object.values()))
    assert {"kernel", "helper", "helper2"} <= {f.function for f in res.stack}
    assert f"-I{inc}" in res.cflags and "-DHELPER_BIAS=7" in res.cflags


@needs_arm
def test_syntax_error_one_line(tmp_path):
    good = _write(tmp_path, "kernel.c", KERNEL_C)
    bad = _write(tmp_path, "bad.c", "int f( {\n  return 0;\n}\n")
    out = tmp_path / "out"
    with pytest.raises(BuildError) as ei:
        compile_objects([good, bad], load_target("cortex-m7"), out)
    msg = str(ei.value)
    assert "\n" not in msg
    assert "bad.c" in msg and "error:" in msg and "expected" in msg
    assert ei.value.one_line() == msg
    log = (out / "build.log").read_text()
    assert "bad.c:1:" in log and "error" in log


@needs_arm
def test_missing_define_is_build_error(tmp_path):
    src = _write(tmp_path, "helper.c", HELPER_C)
    with pytest.raises(BuildError, match="HELPER_BIAS"):
        compile_objects([src], load_target("cortex-m3"), tmp_path / "out")


def test_missing_compiler(tmp_path):
    target = dataclasses.replace(load_target("cortex-m4"), compiler="edgec-no-such-gcc")
    src = _write(tmp_path, "kernel.c", KERNEL_C)
    with pytest.raises(BuildError, match=r"^edgec-no-such-gcc not found; run `make setup`$"):
        compile_objects([src], target, tmp_path / "out")
    with pytest.raises(BuildError, match="not found"):
        toolchain_version("edgec-no-such-gcc")


def test_missing_source(tmp_path):
    with pytest.raises(BuildError, match="not found"):
        compile_objects([tmp_path / "nope.c"], load_target("host"), tmp_path / "out")
    with pytest.raises(BuildError):
        compile_objects([], load_target("host"), tmp_path / "out")


@needs_gcc
def test_host_shared_library_ctypes(tmp_path):
    src = _write(
        tmp_path,
        "lib.c",
        "#include <math.h>\n"
        "int add(int a, int b) { return a + b + OFFSET; }\n"
        "double hyp(double a, double b) { return sqrt(a * a + b * b); }\n",
    )
    so = build_host_shared_library([src], tmp_path / "lib" / "libtest.so", defines={"OFFSET": "1"})
    assert so == tmp_path / "lib" / "libtest.so" and so.is_file()
    lib = ctypes.CDLL(str(so))
    lib.add.argtypes, lib.add.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    lib.hyp.argtypes, lib.hyp.restype = [ctypes.c_double, ctypes.c_double], ctypes.c_double
    assert lib.add(2, 3) == 6
    assert lib.hyp(3.0, 4.0) == pytest.approx(5.0)


@needs_gcc
def test_host_shared_library_error(tmp_path):
    src = _write(tmp_path, "bad.c", "int f(void) { return undefined_thing; }\n")
    with pytest.raises(BuildError) as ei:
        build_host_shared_library([src], tmp_path / "libbad.so")
    assert "\n" not in str(ei.value) and "undefined_thing" in str(ei.value)
    assert (tmp_path / "libbad.build.log").is_file()


def test_toolchain_version():
    if HAVE_ARM:
        assert "arm-none-eabi-gcc" in toolchain_version("arm-none-eabi-gcc")
    if HAVE_GCC:
        assert "gcc" in toolchain_version("gcc")


def test_parse_stack_usage():
    text = (
        "kernel.c:5:7:kernel\t288\tstatic\n"
        "/abs/path:with:colons/x.c:12:6:vla_user\t40\tdynamic,bounded\n"
        "x.c:20:5:alloca_user\t16\tdynamic\n"
        "\n"
    )
    frames = parse_stack_usage(text)
    assert frames == [
        StackFrame("kernel", 288, "static", "kernel.c"),
        StackFrame("vla_user", 40, "dynamic,bounded", "/abs/path:with:colons/x.c"),
        StackFrame("alloca_user", 16, "dynamic", "x.c"),
    ]


def test_object_sizes_arithmetic():
    a = ObjectSizes(text=10, rodata=20, data=3, bss=40)
    assert a.flash == 33 and a.ram == 43
    assert a + ObjectSizes(1, 1, 1, 1) == ObjectSizes(11, 21, 4, 41)
    assert ObjectSizes.total([]) == ObjectSizes()


def test_classify_section():
    from elftools.elf.constants import SH_FLAGS as F

    A, W, X = F.SHF_ALLOC, F.SHF_WRITE, F.SHF_EXECINSTR
    assert classify_section(".text.kernel", "SHT_PROGBITS", A | X) == "text"
    assert classify_section(".rodata.table", "SHT_PROGBITS", A) == "rodata"
    assert classify_section(".data.x", "SHT_PROGBITS", A | W) == "data"
    assert classify_section(".bss.scratch", "SHT_NOBITS", A | W) == "bss"
    assert classify_section(".comment", "SHT_PROGBITS", 0) is None
    assert classify_section(".debug_info", "SHT_PROGBITS", 0) is None


@needs_arm
def test_elf_sizes_linked_firmware(tmp_path):
    """elf_sizes works on a linked ELF (sections by flags), not just objects."""
    import subprocess

    t = load_target("cortex-m4")
    src = _write(
        tmp_path,
        "main.c",
        KERNEL_C
        + "void sink(float *p, int n) { (void)p; (void)n; }\n"
        + "int counter = 5;\n"
        + "int main(void) { float x[64] = {0}; counter += (int)kernel(x, 10); return counter; }\n",
    )
    elf = tmp_path / "fw.elf"
    subprocess.run(
        ["arm-none-eabi-gcc", *t.cflags, "--specs=nosys.specs", "-Wl,--gc-sections", str(src), "-o", str(elf)],
        check=True,
        capture_output=True,
    )
    s = elf_sizes(elf)
    assert s.text > 0 and s.rodata + s.text >= TABLE_LEN * 4
    assert s.data >= 4 and s.bss >= SCRATCH_LEN * 4
    names = {sec.name for sec in elf_sections(elf)}
    assert ".text" in names and ".data" in names and ".bss" in names


def test_elf_sizes_not_elf(tmp_path):
    p = _write(tmp_path, "x.o", "not an elf")
    with pytest.raises(BuildError, match="not a valid ELF"):
        elf_sizes(p)
    with pytest.raises(BuildError):
        elf_sizes(tmp_path / "missing.o")
