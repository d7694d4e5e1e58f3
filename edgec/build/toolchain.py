"""Driving the C toolchain: compile generated C for a target, measure the objects.

`compile_objects` compiles each source with the target's compiler and flags
(plus `-fstack-usage -c`), then reads section sizes from the objects
(pyelftools, see `elfsize`) and per-function stack usage from the `.su` files
gcc writes. `build_host_shared_library` builds a host `.so` so generated C can
be run through ctypes.

Every failure is a BuildError with a one-line message; the full compiler
output goes to a log file next to the outputs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from edgec.build.elfsize import ObjectSizes, elf_sizes
from edgec.errors import BuildError
from edgec.targets import Target

__all__ = [
    "BuildResult",
    "ObjectSizes",
    "StackFrame",
    "build_host_shared_library",
    "compile_objects",
    "parse_stack_usage",
    "toolchain_version",
]

HOST_COMPILER = "gcc"
HOST_SHARED_CFLAGS = ("-O2", "-shared", "-fPIC", "-std=c99")
MAX_WORKERS = 2
COMPILE_TIMEOUT_S = 600
BUILD_LOG = "build.log"

_DEFINE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# gcc .su line: "<file>:<line>:<col>:<function>\t<bytes>\t<qualifier>"
_SU_LINE = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+):(?P<func>[^\t]+)\t(?P<bytes>\d+)\t(?P<qual>\S+)\s*$")


@dataclass(frozen=True)
class StackFrame:
    """Stack usage of one function, from gcc's -fstack-usage.

    qualifier is gcc's: "static" (exact), "dynamic" (unknown, e.g. alloca/VLA)
    or "dynamic,bounded" (dynamic but with a known upper bound `bytes`).
    """

    function: str
    bytes: int
    qualifier: str
    source: str = ""  # the source file the function is in, as gcc reported it

    @property
    def is_static(self) -> bool:
        return self.qualifier == "static"


@dataclass
class BuildResult:
    """Objects produced by `compile_objects` and what they cost on the device."""

    objects: list[Path]
    sizes: ObjectSizes  # sum over all objects
    per_object: dict[str, ObjectSizes]  # object file name (e.g. "model.o") -> sizes
    stack: list[StackFrame]  # every function, largest frame first
    max_stack: StackFrame | None
    compiler: str
    compiler_version: str
    cflags: list[str]  # the full flag list used (target cflags + extras, -fstack-usage, -I, -D)
    log: Path | None = field(default=None)  # out_dir/build.log: every command and its output
    warnings: list[str] = field(default_factory=list)  # compiler "warning:" lines, in source order
    callgraph: "CallGraph" = field(default_factory=lambda: CallGraph())  # from -fcallgraph-info=su


@dataclass
class CallGraph:
    """Functions' own frames and their calls, from gcc's -fcallgraph-info=su."""

    frames: dict[str, int] = field(default_factory=dict)  # function -> own stack bytes
    qualifiers: dict[str, str] = field(default_factory=dict)
    calls: dict[str, set[str]] = field(default_factory=dict)

    def worst_stack(self, root: str) -> tuple[int, list[str], list[str]]:
        """Deepest stack from `root`: (bytes, call chain, callees with unknown frames
        such as libc's memcpy, counted as 0). Recursion raises BuildError."""
        memo: dict[str, tuple[int, list[str]]] = {}
        unknown: set[str] = set()
        active: set[str] = set()

        def depth(fn: str) -> tuple[int, list[str]]:
            if fn in memo:
                return memo[fn]
            if fn in active:
                raise BuildError(f"recursion through {fn}: the stack depth is unbounded")
            if fn not in self.frames:
                unknown.add(fn)
                return 0, [fn]
            active.add(fn)
            best = (0, [])
            for callee in sorted(self.calls.get(fn, ())):
                best = max(best, depth(callee), key=lambda t: t[0])
            active.discard(fn)
            memo[fn] = (self.frames[fn] + best[0], [fn] + best[1])
            return memo[fn]

        total, chain = depth(root)
        return total, chain, sorted(unknown)


def parse_callgraph(text: str, into: CallGraph) -> CallGraph:
    """Parse one .ci file (VCG) into `into`."""
    for m in re.finditer(r'node: \{ title: "([^"]+)" label: "[^"]*?\\n[^"]*?\\n(\d+) bytes \(([^)]*)\)"', text):
        into.frames[m.group(1)] = int(m.group(2))
        into.qualifiers[m.group(1)] = m.group(3)
    for m in re.finditer(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', text):
        into.calls.setdefault(m.group(1), set()).add(m.group(2))
    return into


# --- helpers -----------------------------------------------------------------


def _require_compiler(compiler: str) -> str:
    """Absolute path of `compiler`, or BuildError telling the user how to get it."""
    exe = shutil.which(compiler)
    if exe is None:
        raise BuildError(f"{compiler} not found; run `make setup`")
    return exe


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    # C locale: plain-ASCII diagnostics, the same on every machine.
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        return subprocess.run(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=COMPILE_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise BuildError(f"{cmd[0]} not found; run `make setup`") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{Path(cmd[0]).name} timed out after {COMPILE_TIMEOUT_S} s") from None


def _first_error_line(output: str) -> str:
    """The most useful single line of compiler output: the first error."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    # "collect2: error: ld returned 1 exit status" is a summary; prefer the cause.
    specific = [ln for ln in lines if not ln.startswith("collect2")]
    for pat in (r"\berror:", r"undefined reference|multiple definition", r"\berror\b"):
        for ln in specific:
            if re.search(pat, ln, re.IGNORECASE):
                return ln
    return (specific or lines or ["no compiler output"])[0]


def _flag_args(include_dirs: Sequence[Path], defines: Mapping[str, str] | None) -> list[str]:
    args = [f"-I{Path(d)}" for d in include_dirs]
    for name, value in (defines or {}).items():
        if not _DEFINE_NAME.match(name):
            raise BuildError(f"invalid preprocessor define name {name!r}")
        args.append(f"-D{name}" if value is None or value == "" else f"-D{name}={value}")
    return args


def _check_sources(sources: Sequence[Path]) -> list[Path]:
    srcs = [Path(s) for s in sources]
    if not srcs:
        raise BuildError("no C sources to compile")
    for s in srcs:
        if not s.is_file():
            raise BuildError(f"C source not found: {s}")
    return srcs


def _object_names(sources: list[Path]) -> list[str]:
    """Unique object file names: `<stem>.o`, `<stem>_2.o` for clashing stems."""
    seen: dict[str, int] = {}
    names = []
    for s in sources:
        n = seen.get(s.stem, 0) + 1
        seen[s.stem] = n
        names.append(f"{s.stem}.o" if n == 1 else f"{s.stem}_{n}.o")
    return names


def _log_entry(cmd: list[str], proc: subprocess.CompletedProcess[str]) -> str:
    out = (proc.stdout or "") + (proc.stderr or "")
    return f"$ {subprocess.list2cmdline(cmd)}\n{out}{'' if not out or out.endswith(chr(10)) else chr(10)}[exit {proc.returncode}]\n\n"


def parse_stack_usage(text: str) -> list[StackFrame]:
    """Parse the contents of a gcc `.su` file."""
    frames = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _SU_LINE.match(line)
        if m is None:
            continue  # unknown format: skip rather than fail a good build
        frames.append(StackFrame(m["func"], int(m["bytes"]), m["qual"], m["file"]))
    return frames


# --- public API ----------------------------------------------------------------


def toolchain_version(compiler: str) -> str:
    """First line of `<compiler> --version`."""
    exe = _require_compiler(compiler)
    proc = _run([exe, "--version"])
    if proc.returncode != 0:
        raise BuildError(f"`{compiler} --version` failed: {_first_error_line(proc.stderr + proc.stdout)}")
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if lines else ""


def compile_objects(
    sources: Sequence[Path],
    target: Target,
    out_dir: Path,
    include_dirs: Sequence[Path] = (),
    defines: Mapping[str, str] | None = None,
    *,
    extra_cflags: Sequence[str] = (),
) -> BuildResult:
    """Compile each C source for `target` into `out_dir` (`<stem>.o` and `<stem>.su`).

    Sources are compiled in parallel (2 workers). All compiler output is written
    to `out_dir/build.log`. Raises BuildError if the compiler is missing or any
    source fails to compile (message: the first error line).
    """
    srcs = _check_sources(sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = _require_compiler(target.compiler)
    version = toolchain_version(target.compiler)

    cflags = [*target.cflags, *extra_cflags, "-fstack-usage", "-fcallgraph-info=su", *_flag_args(include_dirs, defines)]
    objects = [out_dir / n for n in _object_names(srcs)]
    cmds = [[exe, *cflags, "-c", str(src), "-o", str(obj)] for src, obj in zip(srcs, objects)]
    for obj in objects:  # never report stale results of an earlier build
        obj.unlink(missing_ok=True)
        obj.with_suffix(".su").unlink(missing_ok=True)
        obj.with_suffix(".ci").unlink(missing_ok=True)

    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(cmds))) as pool:
        procs = list(pool.map(_run, cmds))

    log = out_dir / BUILD_LOG
    log.write_text(
        f"# {version}\n# target: {target.name}\n\n" + "".join(_log_entry(c, p) for c, p in zip(cmds, procs)),
        encoding="utf-8",
    )
    for src, proc in zip(srcs, procs):
        if proc.returncode != 0:
            first = _first_error_line(proc.stderr + proc.stdout)
            raise BuildError(f"compiling {src.name} for {target.name} failed: {first} (full log: {log})")

    per_object: dict[str, ObjectSizes] = {}
    stack: list[StackFrame] = []
    callgraph = CallGraph()
    for obj in objects:
        if not obj.is_file():
            raise BuildError(f"{target.compiler} reported success but wrote no {obj.name} (full log: {log})")
        per_object[obj.name] = elf_sizes(obj)
        su = obj.with_suffix(".su")
        if su.is_file():
            stack.extend(parse_stack_usage(su.read_text(encoding="utf-8", errors="replace")))
        ci = obj.with_suffix(".ci")
        if ci.is_file():
            parse_callgraph(ci.read_text(encoding="utf-8", errors="replace"), callgraph)
    stack.sort(key=lambda f: (-f.bytes, f.function, f.source))
    warnings = [
        ln.strip() for p in procs for ln in (p.stderr + p.stdout).splitlines() if re.search(r"\bwarning:", ln)
    ]

    return BuildResult(
        objects=objects,
        sizes=ObjectSizes.total(list(per_object.values())),
        per_object=per_object,
        stack=stack,
        max_stack=stack[0] if stack else None,
        compiler=target.compiler,
        compiler_version=version,
        cflags=cflags,
        log=log,
        warnings=warnings,
        callgraph=callgraph,
    )


def build_host_shared_library(
    sources: Sequence[Path],
    out_path: Path,
    include_dirs: Sequence[Path] = (),
    defines: Mapping[str, str] | None = None,
) -> Path:
    """Build a host shared library (gcc -O2 -shared -fPIC -std=c99 ... -lm) for ctypes.

    The compiler output is written to `<out_path without suffix>.build.log`.
    Returns `out_path`. Raises BuildError on a missing compiler or a failed build.
    """
    srcs = _check_sources(sources)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    exe = _require_compiler(HOST_COMPILER)
    cmd = [
        exe,
        *HOST_SHARED_CFLAGS,
        *_flag_args(include_dirs, defines),
        *(str(s) for s in srcs),
        "-o",
        str(out_path),
        "-lm",
    ]
    out_path.unlink(missing_ok=True)
    proc = _run(cmd)
    log = out_path.with_suffix(".build.log")
    log.write_text(_log_entry(cmd, proc), encoding="utf-8")
    if proc.returncode != 0:
        first = _first_error_line(proc.stderr + proc.stdout)
        raise BuildError(f"building host library {out_path.name} failed: {first} (full log: {log})")
    if not out_path.is_file():
        raise BuildError(f"{HOST_COMPILER} reported success but wrote no {out_path} (full log: {log})")
    return out_path
