"""Build firmware for a board: the compiled model + the edgec firmware
(runtime_c/firmware/: the serial command server, or the MLPerf Tiny DUT text
mode) + the board's start-up and platform code, linked at the board's
application base with the board's flash and RAM budgets as the linker's
memory regions, so a model that does not fit fails at link time with the
numbers.

    image = build_firmware(compile_result, load_board("qemu-m7"), Path("build/fw"))
    image.elf, image.bin, image.load_address, image.sizes, image.peak_sram_bytes

Generated per build (in <out_dir>/src/): `firmware_info.c` (the INFO JSON,
the model hash, the model's static input/output buffers with their dtype and
quantization, the MLPerf Tiny data conversions and a generic run function),
`firmware_model.c` (model.c compiled with the per-layer profiling hooks) and
`edgec_memory.ld` (the MEMORY regions, from board.toml). The model's C is
model.c, model_kernels.c and, for integer models, the runtime_c kernel
sources the compile copied next to them (`edgec_*_s8.c` + headers).

Tensors are dtype-generic: float32 and int8 (also uint8/int16/int32) graph
inputs and outputs, moved as raw bytes in the C API's element type.
"""

from __future__ import annotations

import json
import re
import shutil
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgec import __version__
from edgec.boards import Board
from edgec.build.elfsize import ObjectSizes, elf_sections, elf_sizes
from edgec.build.toolchain import _first_error_line, _log_entry, _run, compile_objects
from edgec.errors import BuildError, TargetError
from edgec.targets import load_target

HARNESSES = ("edgec", "mlperf")
"""`edgec`: the serial command server (docs/protocol.md); `mlperf`: the MLPerf Tiny / EEMBC DUT text mode."""

MODEL_FILES = ("model.c", "model_kernels.c", "model.h")
"""The files the model hash covers first, in this order (then the runtime kernel files, see model_hash)."""

DTYPES: dict[str, tuple[str, int, int]] = {
    # dtype -> (C type, bytes per element, the code edgec_firmware.h gives it)
    "float32": ("float", 4, 1),
    "int8": ("int8_t", 1, 2),
    "uint8": ("uint8_t", 1, 3),
    "int16": ("int16_t", 2, 4),
    "int32": ("int32_t", 4, 5),
}
"""Graph input/output dtypes the firmware moves (docs/protocol.md)."""

MLPERF_MODEL_IDS = {
    # MLPerf Tiny reference model files (mlcommons/tiny) -> the benchmark's model id
    "kws_ref_model": "kws01", "kws_ref_model_float32": "kws01",
    "vww_96_int8": "vww01", "vww_96_float": "vww01",
    "pretrainedResnet_quant": "ic01", "pretrainedResnet": "ic01",
    "ad01_int8": "ad01", "ad01_fp32": "ad01",
    "str_ww_ref_model": "sww01",
}
"""Default `mlperf_model` for the MLPerf Tiny reference models, by model name."""

PROTOCOL_VERSION = 1
MAX_INFO_BYTES = 0xFFFF  # INFO's `u16 total`

_ROOT = Path(__file__).resolve().parent.parent.parent
RUNTIME_DIR = _ROOT / "runtime_c"
BOARDS_COMMON = _ROOT / "boards" / "common"

_OVERFLOW = re.compile(r"region [`'\"]?([A-Za-z0-9_]+)['`\"]? overflowed by (\d+) bytes")


@dataclass
class FirmwareImage:
    """A linked firmware and what it costs on the board (all from the ELF)."""

    board: str
    model: str
    harness: str
    elf: Path
    bin: Path
    load_address: int  # where firmware.bin goes: the board's [layout] app_base
    entry: int  # Reset_Handler
    sizes: ObjectSizes  # text/rodata/data/bss of the linked ELF; bss includes the stack reserve
    stack_bytes: int  # the stack reserved by the linker script
    model_hash: str  # CRC32 (hex) of model.c + model_kernels.c + model.h, as INFO reports it
    info: dict[str, Any]  # the INFO JSON the firmware answers
    map_file: Path
    flash_by_object: dict[str, int] = field(default_factory=dict)  # flash bytes per object after --gc-sections
    boot_stub: Path | None = None  # emulated boards: 8-byte vector at flash_base to boot without the bootloader
    flash_base: int = 0
    model_objects: list[str] = field(default_factory=list)  # the objects of the model: model.c, kernels, runtime_c kernels
    options: dict[str, Any] = field(default_factory=dict)  # build options: kernels ("dsp"/"portable"), layer_profile

    @property
    def flash_bytes(self) -> int:
        return self.sizes.flash

    @property
    def peak_sram_bytes(self) -> int:
        """.data + .bss + the stack reserve: everything the firmware ever uses in SRAM
        (it allocates nothing at run time)."""
        return self.sizes.data + self.sizes.bss

    @property
    def model_flash_bytes(self) -> int:
        """Flash of the model: its weights, run function, kernels (TVM and runtime_c), after --gc-sections."""
        objs = set(self.model_objects) or {"firmware_model.o", "model_kernels.o"}
        return sum(n for obj, n in self.flash_by_object.items() if obj in objs)

    def qemu_images(self) -> list[tuple[Path, int]]:
        """Images for edgec.device.qemu.start() that boot the application
        directly, without edgec's bootloader: the boot stub (the application's
        initial stack pointer and reset vector) at flash_base, where the CPU
        fetches its vector table at reset, and firmware.bin at app_base, where
        the bootloader would have written it."""
        if self.boot_stub is None:
            raise BuildError(f"board '{self.board}' is not emulated: no QEMU images")
        return [(self.boot_stub, self.flash_base), (self.bin, self.load_address)]

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("elf", "bin", "map_file", "boot_stub"):
            d[k] = str(d[k]) if d[k] is not None else None
        d["flash_bytes"] = self.flash_bytes
        d["peak_sram_bytes"] = self.peak_sram_bytes
        return d


# --- inputs --------------------------------------------------------------------


_RUNTIME_FILE = re.compile(r"^edgec_[A-Za-z0-9_]+\.[ch]$")


def runtime_file_names(names: Any) -> list[str]:
    """The runtime_c kernel files a compile copied into the build folder
    (`edgec_*_s8.c`, their headers), sorted: compiled and hashed with the model."""
    return sorted(n for n in names if _RUNTIME_FILE.match(n))


def _model_files(result_or_out_dir: Any) -> dict[str, str]:
    """model.c, model_kernels.[ch], model.h, metadata.json and the runtime kernel
    files, from a CompileResult or a build folder."""
    need = ("model.c", "model_kernels.c", "model_kernels.h", "model.h", "metadata.json")
    if isinstance(result_or_out_dir, (str, Path)):
        folder = Path(result_or_out_dir)
        missing = [n for n in need if not (folder / n).is_file()]
        if missing:
            raise BuildError(f"{folder} is not an edgec build folder (missing {', '.join(missing)}); run `edgec compile`")
        names = [*need, *runtime_file_names(p.name for p in folder.iterdir() if p.is_file())]
        return {n: (folder / n).read_text(encoding="utf-8") for n in names}
    files = getattr(result_or_out_dir, "files", None)
    if not isinstance(files, Mapping):
        raise TypeError("build_firmware needs a CompileResult or the path of an edgec build folder")
    missing = [n for n in need if n not in files]
    if missing:
        raise BuildError(f"the compile result has no {', '.join(missing)}")
    return {n: files[n] for n in [*need, *runtime_file_names(files)]}


def model_hash(files: Mapping[str, str]) -> str:
    """CRC32 of model.c, model_kernels.c, model.h, then the runtime kernel files
    (`edgec_*.c/.h`, sorted by name) when the model uses any: what INFO's model_hash is."""
    crc = 0
    for name in [*MODEL_FILES, *runtime_file_names(files)]:
        crc = zlib.crc32(files[name].encode("utf-8"), crc)
    return f"{crc:08x}"


def mlperf_model_id(model_name: str) -> str:
    """The MLPerf Tiny id (kws01, vww01, ic01, ad01, sww01) of a reference model, else the model name."""
    ids = {k.lower(): v for k, v in MLPERF_MODEL_IDS.items()}  # model names are lower-cased identifiers
    return ids.get(model_name.lower(), model_name)


# --- generated sources ------------------------------------------------------------


def _c_string(text: str, width: int = 96) -> str:
    """A C string literal (split over lines) for ASCII text."""
    out = []
    for i in range(0, len(text), width):
        part = text[i : i + width]
        part = part.replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?")
        out.append(f'    "{part}"')
    return "\n".join(out) if out else '    ""'


def _tensor_dtype(t: dict[str, Any]) -> tuple[str, int, int]:
    dt = t["dtype"]
    if dt not in DTYPES:
        raise BuildError(f"the firmware moves {', '.join(DTYPES)} tensors; '{t['name']}' is {dt}")
    return DTYPES[dt]


def _elements(t: dict[str, Any]) -> int:
    n = 1
    for d in t["shape"]:
        n *= int(d)
    return n


def _quant(t: dict[str, Any]) -> tuple[float, int] | None:
    """(scale, zero_point) of a per-tensor quantized graph input/output, else None."""
    scale, zp = t.get("scale"), t.get("zero_point")
    if scale is None or zp is None or isinstance(scale, (list, tuple)) or isinstance(zp, (list, tuple)):
        return None
    return float(scale), int(zp)


def _info_json(meta: dict[str, Any], board: Board, mhash: str, harness: str, options: Mapping[str, Any]) -> dict[str, Any]:
    def tensor(t: dict[str, Any]) -> dict[str, Any]:
        _, size, _ = _tensor_dtype(t)
        d: dict[str, Any] = {"name": t["name"], "shape": list(t["shape"]), "dtype": t["dtype"], "bytes": _elements(t) * size}
        q = _quant(t)
        if q is not None:
            d["scale"], d["zero_point"] = q
        return d

    return {
        "protocol": PROTOCOL_VERSION,
        "edgec": __version__,
        "model": meta["model"],
        "model_hash": mhash,
        "board": board.name,
        "harness": harness,
        "counter": board.counter_unit,
        "counter_hz": board.counter_hz,
        "inputs": [tensor(t) for t in meta["inputs"]],
        "outputs": [tensor(t) for t in meta["outputs"]],
        "arena": int(meta["arena_bytes"]),
        "kernels": options["kernels"],
        "layer_profile": bool(options["layer_profile"]),
        "layers": len(meta["layers"]),
        "layer_names": [L["name"] for L in meta["layers"]],
    }


def _c_float(x: float) -> str:
    """An exact float32 literal (C99 hex float)."""
    import numpy as np

    f = float(np.float32(x))
    if f == 0.0:
        return "0.0f"
    return f"{f.hex()}f"


MLPERF_INPUT_RAW, MLPERF_INPUT_U8_TO_S8, MLPERF_INPUT_F32_TO_S8 = 0, 1, 2
MLPERF_RESULT_VALUES, MLPERF_RESULT_MSE = 0, 1


def mlperf_modes(meta: dict[str, Any], mlperf_model: str) -> tuple[int, int]:
    """How the MLPerf Tiny harness converts the runner's data and reports results,
    as the reference firmware of each benchmark does (mlcommons/tiny
    benchmark/reference_submissions/*/submitter_implemented.cpp):

    - input: kws01 sends int8 features (raw); vww01 and ic01 send uint8 pixels,
      which the reference turns into int8 by subtracting 128; ad01 sends float32
      features, which the reference quantizes with the input's scale and zero point.
      Only for int8 model inputs; a float model takes the bytes as they are.
    - results: every output value (int8 outputs dequantized, `(float)(q - zp) * scale`,
      the reference's DequantizeInt8ToFloat); ad01 reports one value, the mean squared
      error between the dequantized output and the float input (the anomaly score).
    """
    ins, outs = meta["inputs"], meta["outputs"]
    in_mode, res_mode = MLPERF_INPUT_RAW, MLPERF_RESULT_VALUES
    single_int8 = len(ins) == 1 and ins[0]["dtype"] == "int8" and _quant(ins[0]) is not None
    if mlperf_model in ("vww01", "ic01") and single_int8:
        in_mode = MLPERF_INPUT_U8_TO_S8
    if mlperf_model == "ad01":
        if single_int8:
            in_mode = MLPERF_INPUT_F32_TO_S8
        if len(ins) == 1 and len(outs) == 1 and _elements(ins[0]) == _elements(outs[0]) and \
                ins[0]["dtype"] in ("int8", "float32") and outs[0]["dtype"] in ("int8", "float32"):
            res_mode = MLPERF_RESULT_MSE
    return in_mode, res_mode


def _firmware_info_c(meta: dict[str, Any], info: dict[str, Any], mlperf_model: str, harness: str) -> str:
    name = meta["model"]
    up = f"EDGEC_{name.upper()}"
    text = json.dumps(info, separators=(",", ":"), ensure_ascii=True)
    if len(text) > MAX_INFO_BYTES:
        raise BuildError(f"INFO for model '{name}' is {len(text)} bytes; the protocol allows {MAX_INFO_BYTES}")
    lines = [
        f"/* Generated by edgec {__version__} (edgec/build/firmware.py) for model '{name}'. Do not edit. */",
        "#include <stdint.h>",
        "",
        '#include "edgec_firmware.h"',
        '#include "model.h"',
        "",
        f"const char edgec_fw_info_json[] =\n{_c_string(text)};",
        f"const uint32_t edgec_fw_info_json_len = {len(text)}u;",
        f"const char edgec_fw_model_name[] = {json.dumps(name)};",
        f"const char edgec_fw_mlperf_model[] = {json.dumps(mlperf_model)};",
        "",
        "/* Static tensors: the protocol writes inputs and reads outputs here (the C API's element types). */",
    ]
    ins = [f"edgec_fw_in{k}" for k in range(len(meta["inputs"]))]
    outs = [f"edgec_fw_out{k}" for k in range(len(meta["outputs"]))]
    for kind, names, tensors in (("INPUT", ins, meta["inputs"]), ("OUTPUT", outs, meta["outputs"])):
        for k, (v, t) in enumerate(zip(names, tensors)):
            ctype = _tensor_dtype(t)[0]
            lines.append(f"static {ctype} {v}[{up}_{kind}{k}_SIZE] __attribute__((aligned(16))); /* {t['dtype']} {t['name']!r} */")

    def table(cname: str, names: list[str], tensors: list[dict[str, Any]]) -> list[str]:
        rows = []
        for v, t in zip(names, tensors):
            _, size, code = _tensor_dtype(t)
            scale, zp = _quant(t) or (0.0, 0)
            rows.append(f"    {{(uint8_t *){v}, (uint32_t)sizeof {v}, {code}u, {size}u, {_c_float(scale)}, {zp}}},")
        body = rows or ["    {0, 0, 0, 0, 0.0f, 0},"]
        return [
            f"const edgec_fw_tensor_t {cname}[] = {{",
            *body,
            "};",
            f"const uint32_t edgec_fw_num_{cname.split('_')[-1]} = {len(names)}u;",
        ]

    lines += ["", *table("edgec_fw_inputs", ins, meta["inputs"]), *table("edgec_fw_outputs", outs, meta["outputs"]), ""]
    lines += [
        f"uint64_t edgec_fw_profile[{up}_NUM_LAYERS > 0 ? {up}_NUM_LAYERS : 1];",
        "uint64_t edgec_fw_profile_t0;",
        f"const uint32_t edgec_fw_num_layers = {up}_NUM_LAYERS;",
        "",
        "int edgec_fw_run(void) {",
        f"    static const void *const in[] = {{{', '.join(ins) or '0'}}};",
        f"    static void *const out[] = {{{', '.join(outs) or '0'}}};",
        f"    return edgec_{name}_run_v(in, out);",
        "}",
        "",
    ]
    if harness == "mlperf":
        in_mode, res_mode = mlperf_modes(meta, mlperf_model)
        n_f32 = _elements(meta["inputs"][0]) if in_mode == MLPERF_INPUT_F32_TO_S8 else 0
        lines += [
            "/* MLPerf Tiny data conversions (edgec.build.firmware.mlperf_modes). */",
            f"const uint8_t edgec_fw_mlperf_input_mode = {in_mode}u;",
            f"const uint8_t edgec_fw_mlperf_result_mode = {res_mode}u;",
            f"float edgec_fw_mlperf_f32[{max(n_f32, 1)}] __attribute__((aligned(16))); /* ad01: the runner's float32 input */",
            f"const uint32_t edgec_fw_mlperf_f32_len = {n_f32}u;",
            "",
        ]
    return "\n".join(lines)


def _firmware_model_c(meta: dict[str, Any], layer_profile: bool = True) -> str:
    name = meta["model"]
    hooks = (
        '#include "edgec_profile.h" /* EDGEC_PROFILE_BEGIN/END before model.c sees its no-op defaults */\n'
        if layer_profile
        else "/* built without per-layer profiling: model.c's EDGEC_PROFILE_BEGIN/END stay no-ops */\n"
    )
    return (
        f"/* Generated by edgec {__version__}: the model{' with per-layer profiling' if layer_profile else ''}. Do not edit. */\n"
        + hooks
        + '#include "model.c"\n'
        "\n"
        '#include "edgec_firmware.h"\n'
        "\n"
        f"void edgec_fw_clear_arena(void) {{ memset(edgec_{name}_arena, 0, sizeof edgec_{name}_arena); }}\n"
    )


def _memory_ld(board: Board) -> str:
    assert board.build is not None
    flash = board.app_flash_bytes
    if flash <= 0:
        raise TargetError(f"board '{board.name}': no flash left above app_base (flash_kb {board.flash_kb})")
    regions = [("FLASH", "rx", board.app_base, flash), ("RAM", "rwx", board.ram_base, board.ram_bytes)]
    regions += [(n, "rwx", base, size) for n, (base, size) in board.regions.items()]
    names = {r[0] for r in regions}
    if board.build.stack_region not in names:
        raise TargetError(f"board '{board.name}': build.stack_region '{board.build.stack_region}' is not a memory region")
    lines = [
        f"/* Generated by edgec from boards/{board.name}/board.toml. Do not edit. */",
        "MEMORY",
        "{",
        *(f"    {n:<6}({a}) : ORIGIN = {base:#010x}, LENGTH = {size:#010x}" for n, a, base, size in regions),
        "}",
        f'REGION_ALIAS("STACK_RAM", {board.build.stack_region});',
        f"__edgec_stack_size = {board.build.stack_kb * 1024};",
        "",
    ]
    return "\n".join(lines)


def board_defines(board: Board) -> dict[str, str]:
    """Preprocessor defines every board build gets from its board.toml (docs/boards.md)."""
    console = board.console
    mul, div = board.counter_ratio
    d = {
        "EDGEC_CPU_HZ": f"{board.clock_hz}u",
        "EDGEC_BAUD": f"{int(console['baud'])}u",
        "EDGEC_COUNTER_HZ": f"{board.counter_hz}u",
        "EDGEC_COUNTER_MUL": f"{mul}u",
        "EDGEC_COUNTER_DIV": f"{div}u",
        "EDGEC_UART_CLK_HZ": f"{int(console.get('clock_hz', board.clock_hz))}u",
    }
    if "uart_base" in console:
        d["EDGEC_UART_BASE"] = f"{int(console['uart_base']):#010x}u"
    return d


# --- linking ---------------------------------------------------------------------


def _tool(compiler: str, tool: str) -> str:
    name = compiler[: -len("gcc")] + tool if compiler.endswith("gcc") else tool
    exe = shutil.which(name)
    if exe is None:
        raise BuildError(f"{name} not found; run `make setup`")
    return exe


def _flash_by_object(map_text: str) -> dict[str, int]:
    """Bytes each object contributes to the flash image, from the linker map:
    its input sections of code, read-only data and .data initialisers that
    survived --gc-sections. Library members (libc, libm, libgcc) are grouped as "libraries"."""
    out: dict[str, int] = {}
    in_map = False
    pending: str | None = None  # a section name whose address/size/object follow on the next line
    for line in map_text.splitlines():
        if line.startswith("Linker script and memory map"):
            in_map = True
            continue
        if not in_map:
            continue
        if pending is not None:
            m = _MAP_CONT.match(line)
            if m:
                _add(out, pending, m.group(2), int(m.group(1), 16))
            pending = None
            continue
        m = _MAP_LINE.match(line)
        if m:
            _add(out, m.group(1), m.group(3), int(m.group(2), 16))
            continue
        m = _MAP_NAME.match(line)
        pending = m.group(1) if m else None
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


_MAP_LINE = re.compile(r"^ (\.\S+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+\.(?:o|obj)|\S+\.a\(\S+\))\s*$")
_MAP_CONT = re.compile(r"^\s{2,}0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+\.(?:o|obj)|\S+\.a\(\S+\))\s*$")
_MAP_NAME = re.compile(r"^ (\.\S+)\s*$")
_FLASH_SECTIONS = (".vectors", ".text", ".rodata", ".data", ".ARM.exidx", ".ARM.extab", ".init", ".fini",
                   ".init_array", ".fini_array", ".preinit_array", ".glue_7", ".vfp11_veneer")


def _add(out: dict[str, int], section: str, obj: str, size: int) -> None:
    if size == 0 or not section.startswith(_FLASH_SECTIONS):
        return
    key = "libraries" if ".a(" in obj else Path(obj).name
    out[key] = out.get(key, 0) + size


def _link(board: Board, cflags: list[str], objects: list[Path], work: Path, out_dir: Path, log: Path) -> Path:
    assert board.build is not None
    target = load_target(board.target)
    elf = out_dir / "firmware.elf"
    map_file = out_dir / "firmware.map"
    cmd = [
        shutil.which(target.compiler) or target.compiler,
        *cflags,
        "-T",
        str(board.build.linker_script),
        f"-L{work}",
        f"-L{BOARDS_COMMON}",
        f"-L{board.folder}",
        "-nostartfiles",
        "--specs=nano.specs",
        "--specs=nosys.specs",
        "-Wl,--gc-sections",
        f"-Wl,-Map={map_file}",
        "-o",
        str(elf),
        *(str(o) for o in objects),
        "-lm",
    ]
    proc = _run(cmd)
    with log.open("a", encoding="utf-8") as f:
        f.write(_log_entry(cmd, proc))
    output = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0 or not elf.is_file():
        elf.unlink(missing_ok=True)
        over = _OVERFLOW.findall(output)
        if over:
            parts = "; ".join(f"region {r} overflowed by {int(n):,} bytes" for r, n in over)
            budget = (
                f"app flash {board.app_flash_bytes // 1024} KiB at {board.app_base:#x}, "
                f"RAM {board.ram_kb} KiB at {board.ram_base:#x} incl. {board.build.stack_kb} KiB stack"
            )
            raise BuildError(f"model too big for board {board.name}: {parts} (budget: {budget})")
        raise BuildError(f"linking firmware for {board.name} failed: {_first_error_line(output)} (full log: {log})")
    return elf


# --- public API ------------------------------------------------------------------


def build_firmware(
    result_or_out_dir: Any,
    board: Board,
    out_dir: Path,
    harness: str = "edgec",
    *,
    mlperf_model: str | None = None,
    defines: Mapping[str, str] | None = None,
    portable_kernels: bool = False,
    layer_profile: bool = True,
) -> FirmwareImage:
    """Compile and link the firmware for `board` into `out_dir`.

    `result_or_out_dir`: a CompileResult, or the folder `edgec compile -o` wrote.
    `harness`: "edgec" (the serial command server) or "mlperf" (the MLPerf Tiny
    DUT text mode); `mlperf_model` is the model id it reports (kws01, vww01,
    ic01, ad01; default: the id of an MLPerf Tiny reference model, else the model
    name); it also picks the reference firmware's data conversions (mlperf_modes).
    `portable_kernels`: compile the runtime_c int8 kernels' portable C path even on a
    DSP core (defines EDGEC_KERNELS_PORTABLE and EDGEC_NO_DSP), to compare the two
    paths. `layer_profile=False` leaves model.c's per-layer hooks as no-ops (PROFILE
    then reads zeros): the INVOKE count is the model alone. `defines`: extra
    preprocessor defines for every source. Produces firmware.elf, firmware.bin
    (objcopy -O binary: the bytes from app_base), firmware.map, build.log,
    firmware.json and, for emulated boards, boot_stub.bin. Raises BuildError
    (one line) on a failed build, "model too big for board ..." when a linker
    region overflows.
    """
    if harness not in HARNESSES:
        raise BuildError(f"unknown firmware harness '{harness}'; known: {', '.join(HARNESSES)}")
    if board.build is None:
        raise TargetError(f"board '{board.name}' has no [build] section: it cannot build firmware")
    files = _model_files(result_or_out_dir)
    try:
        meta = json.loads(files["metadata.json"])
    except ValueError:
        raise BuildError("metadata.json of the model is not valid JSON") from None
    name = meta["model"]
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise BuildError(f"model name {name!r} is not a C identifier")
    target = load_target(board.target)
    mhash = model_hash(files)
    kernel_sources = [n for n in runtime_file_names(files) if n.endswith(".c")]
    if kernel_sources and target.dsp and not portable_kernels:
        # the DSP kernels need the scratch the arena planner reserved for a DSP target
        try:
            planned_dsp = load_target(meta.get("target", board.target)).dsp
        except TargetError:
            planned_dsp = True
        if not planned_dsp:
            raise BuildError(
                f"model '{name}' was compiled for {meta.get('target')} (portable int8 kernels, no DSP scratch in its "
                f"arena); {board.name} ({board.target}) would run the DSP kernels: compile for {board.target} "
                f"(--board {board.name}) or build the firmware with portable kernels")
    options = {
        # the runtime_c int8 kernels' code path (None: the model uses none, e.g. a float model)
        "kernels": ("dsp" if target.dsp and not portable_kernels else "portable") if kernel_sources else None,
        "layer_profile": bool(layer_profile),
    }
    info = _info_json(meta, board, mhash, harness, options)
    mlperf_model = mlperf_model or mlperf_model_id(name)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    products = ("firmware.elf", "firmware.bin", "firmware.map", "boot_stub.bin", "firmware.json", "build.log")
    for p in products:  # never leave an artefact of an earlier build next to a failed one
        (out_dir / p).unlink(missing_ok=True)
    src = out_dir / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir()
    for fname, text in files.items():
        (src / fname).write_text(text, encoding="utf-8")
    (src / "firmware_info.c").write_text(_firmware_info_c(meta, info, mlperf_model, harness), encoding="utf-8")
    (src / "firmware_model.c").write_text(_firmware_model_c(meta, layer_profile), encoding="utf-8")
    (src / "edgec_memory.ld").write_text(_memory_ld(board), encoding="utf-8")

    fw = RUNTIME_DIR / "firmware"
    common = RUNTIME_DIR / "common"
    model_sources = [src / "firmware_model.c", src / "model_kernels.c", *(src / n for n in kernel_sources)]
    sources = [*model_sources, src / "firmware_info.c", fw / "main.c"]
    if harness == "edgec":
        sources += [fw / "server.c", common / "edgec_cobs.c", common / "edgec_crc32.c"]
    else:
        sources += [fw / "mlperf_tiny.c"]
    sources += list(board.build.sources)
    all_defines = {**board_defines(board), **board.build.defines, **(defines or {})}
    if harness == "mlperf":
        all_defines["EDGEC_HARNESS_MLPERF"] = "1"
    if portable_kernels:
        # the kernels' DSP switch (runtime_c/kernels/edgec_nn_support.h): EDGEC_KERNELS_PORTABLE,
        # and EDGEC_NO_DSP, its older spelling (the only one in d586220); both select the portable C path
        all_defines["EDGEC_KERNELS_PORTABLE"] = "1"
        all_defines["EDGEC_NO_DSP"] = "1"
    include_dirs = [src, RUNTIME_DIR / "include", board.folder, BOARDS_COMMON]
    extra = list(board.build.cflags)
    build = compile_objects(sources, target, out_dir / "obj", include_dirs, all_defines, extra_cflags=extra)
    log = out_dir / "build.log"
    log.write_text(build.log.read_text(encoding="utf-8") if build.log else "", encoding="utf-8")

    elf = _link(board, [*target.cflags, *extra], build.objects, src, out_dir, log)
    bin_path = out_dir / "firmware.bin"
    cmd = [_tool(target.compiler, "objcopy"), "-O", "binary", str(elf), str(bin_path)]
    proc = _run(cmd)
    with log.open("a", encoding="utf-8") as f:
        f.write(_log_entry(cmd, proc))
    if proc.returncode != 0 or not bin_path.is_file():
        raise BuildError(f"objcopy failed for {elf.name}: {_first_error_line(proc.stdout + proc.stderr)} (full log: {log})")

    load_address, entry = _load_address(elf)
    if load_address != board.app_base:
        raise BuildError(f"firmware for {board.name} starts at {load_address:#x}, not at app_base {board.app_base:#x}")
    sizes = elf_sizes(elf)
    stack = sum(s.size for s in elf_sections(elf) if s.name == ".stack")
    map_file = out_dir / "firmware.map"
    boot_stub = None
    if board.emulated:
        boot_stub = out_dir / "boot_stub.bin"
        boot_stub.write_bytes(bin_path.read_bytes()[:8])  # initial SP, Reset_Handler
    image = FirmwareImage(
        board=board.name,
        model=name,
        harness=harness,
        elf=elf,
        bin=bin_path,
        load_address=load_address,
        entry=entry,
        sizes=sizes,
        stack_bytes=stack,
        model_hash=mhash,
        info=info,
        map_file=map_file,
        flash_by_object=_flash_by_object(map_file.read_text(encoding="utf-8", errors="replace")),
        boot_stub=boot_stub,
        flash_base=board.flash_base,
        model_objects=[o.name for o in build.objects[: len(model_sources)]],
        options=options,
    )
    (out_dir / "firmware.json").write_text(json.dumps(image.summary(), indent=2, default=str) + "\n")
    return image


def _load_address(elf: Path) -> tuple[int, int]:
    """Lowest load address of the image's loadable bytes, and the entry point."""
    from elftools.elf.elffile import ELFFile

    with elf.open("rb") as f:
        e = ELFFile(f)
        loads = [s["p_paddr"] for s in e.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"] > 0]
        if not loads:
            raise BuildError(f"{elf} has no loadable bytes")
        return min(loads), int(e.header["e_entry"])
