"""Start and stop emulated boards (QEMU), bound to 127.0.0.1 on free ports.

A started board is recorded in a small state file (pid, serial URL) so that
`edgec board stop` in another process can find it; processes are only ever
stopped by their recorded process id.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edgec.boards import Board
from edgec.errors import EdgecError


class BoardError(EdgecError):
    """An emulated board could not be started, found or stopped."""


def state_dir() -> Path:
    d = Path(os.environ.get("EDGEC_STATE_DIR", Path.home() / ".cache" / "edgec" / "boards"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class QemuInstance:
    board: str
    pid: int
    url: str  # socket://127.0.0.1:PORT or a pty path
    log: str
    images: list[str]

    def alive(self) -> bool:
        return _alive(self.pid)

    def stop(self, timeout: float = 5.0) -> None:
        _terminate(self.pid, timeout)
        f = state_dir() / f"{self.board}.json"
        if f.exists():
            try:
                if json.loads(f.read_text()).get("pid") == self.pid:
                    f.unlink()
            except (OSError, ValueError):
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _terminate(pid: int, timeout: float) -> None:
    if not _alive(pid):
        _reap(pid)
        return
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _reap(pid)
        if not _alive(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def qemu_command(board: Board, images: list[tuple[Path, int | None]], serial: str, log: Path) -> list[str]:
    exe = shutil.which("qemu-system-arm")
    if exe is None:
        raise BoardError("qemu-system-arm not found; run `make setup`")
    q = board.qemu
    cmd = [exe, "-M", q["machine"], "-cpu", q.get("cpu", "max"), "-nographic", "-monitor", "none",
           "-serial", serial, "-semihosting-config", "enable=on,target=native",
           "-icount", f"shift={int(q.get('icount_shift', 0))}", "-D", str(log)]
    first = True
    for path, addr in images:
        if first and addr is None:
            cmd += ["-kernel", str(path)]
        else:
            cmd += ["-device", f"loader,file={path}" + (f",addr={addr:#x}" if addr is not None else "")]
        first = False
    return cmd


def start(board: Board, images: list[tuple[Path, int | None]], *, pty: bool = False, record: bool = True,
          wait_connect: bool = False) -> QemuInstance:
    """Start QEMU with `images` (the first, with address None, is the -kernel ELF).

    The console UART is a TCP server on 127.0.0.1 (or a pty). With
    wait_connect, the guest does not run before the first client connects.
    """
    if not board.emulated:
        raise BoardError(f"board '{board.name}' is a real board: connect it and use its serial port")
    log = state_dir() / f"{board.name}-{os.getpid()}-{time.monotonic_ns()}.log"
    if pty:
        serial = "pty"
    else:
        port = free_port()
        serial = f"tcp:127.0.0.1:{port},server=on,wait={'on' if wait_connect else 'off'},nodelay=on"
    cmd = qemu_command(board, images, serial, log)
    out = open(log.with_suffix(".out"), "w+b")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out.seek(0)
            msg = out.read().decode(errors="replace").strip().splitlines()
            raise BoardError(f"QEMU for {board.name} exited at start: {msg[-1] if msg else proc.returncode}")
        if pty:
            out.seek(0)
            m = re.search(rb"char device redirected to (/dev/pts/\d+)", out.read())
            if m:
                url = m.group(1).decode()
                break
        elif _listening(port):
            url = f"socket://127.0.0.1:{port}"
            break
        time.sleep(0.05)
    if not url:
        _terminate(proc.pid, 2)
        raise BoardError(f"QEMU for {board.name} did not open its serial port")
    inst = QemuInstance(board.name, proc.pid, url, str(log), [str(p) for p, _ in images])
    if record:
        (state_dir() / f"{board.name}.json").write_text(json.dumps(asdict(inst)))
    return inst


def _listening(port: int) -> bool:
    """Is something listening on 127.0.0.1:port? (Read from /proc: probing with a
    connection would be taken by QEMU as its client.)"""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    want = f"0100007F:{port:04X}"
    return any(ln.split()[1] == want and ln.split()[3] == "0A" for ln in lines)


def running(board_name: str) -> QemuInstance | None:
    f = state_dir() / f"{board_name}.json"
    if not f.exists():
        return None
    try:
        inst = QemuInstance(**json.loads(f.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not inst.alive():
        f.unlink(missing_ok=True)
        return None
    return inst
