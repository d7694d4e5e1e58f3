"""Flash a firmware image onto a board.

`flash_image(port_url, image, address, board)` is the one entry point:

* method "stm32-serial" (the default for every board here): the STM32 USART
  bootloader protocol (ST AN3155, `edgec.device.stm32boot`) - the ROM
  bootloader of a real STM32 part, or edgec's bootloader on an emulated board.
  It refuses an image that does not fit the application region before a byte
  is sent, erases the sectors the image covers, writes it in 256-byte blocks,
  reads it back and compares (verify), repairs blocks that differ (erase their
  sectors and write them again, at most twice), then starts it with GO.
* method "pyocd": hands over to pyOCD (a debug probe on a real board) when it
  is installed.

Addresses may be given in the board's native view (e.g. app_base 0x8000 on
QEMU) or in the STM32 view (0x08008000); the bootloader is always spoken to in
the STM32 view, which is also what stm32flash uses.

A flash interrupted at any point (connection lost, host killed) leaves the
board in its bootloader: edgec's bootloader never starts the application by
itself and abandons a half-received command after its inter-byte timeout, so
the next `flash_image` synchronises again and succeeds.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgec.boards import Board
from edgec.build.bootloader import FlashGeometry, flash_geometry
from edgec.device.stm32boot import (
    BLOCK,
    CMD_EXT_ERASE,
    CMD_GO,
    CMD_READ,
    CMD_WRITE,
    BootloaderNack,
    BootloaderTimeout,
    FlashError,
    LinkLost,
    Stm32Boot,
)
from edgec.errors import BuildError

__all__ = ["FlashError", "FlashReport", "METHODS", "flash_image", "check_fits"]

METHODS = ("stm32-serial", "pyocd")

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): phase is "erase", "write" or "verify"; done and
total are bytes (pages for "erase")."""


@dataclass
class FlashReport:
    """What a flash did and how fast. `kb_per_s` is KiB (1024 B) per second of
    the write phase; `seconds` is the whole flash, connect to GO."""

    bytes: int
    seconds: float
    kb_per_s: float
    address: int  # in the STM32 view for stm32-serial
    method: str
    verified: bool
    started: bool  # GO was acknowledged
    product_id: int | None = None
    pages_erased: list[int] = field(default_factory=list)
    write_seconds: float = 0.0
    verify_seconds: float = 0.0
    retries: int = 0  # commands retried after a NACK/timeout/garbage
    resyncs: int = 0
    repaired_blocks: int = 0  # blocks rewritten after a verify mismatch

    def summary(self) -> str:
        return (f"{self.bytes} bytes at {self.address:#010x} in {self.seconds:.2f} s "
                f"(write {self.kb_per_s:.1f} KB/s){', verified' if self.verified else ''}"
                f"{', started' if self.started else ''}"
                f"{f', {self.retries} retries' if self.retries else ''}")


def check_fits(image_len: int, address: int, board: Board, geometry: FlashGeometry | None = None) -> int:
    """The native start address of an image of `image_len` bytes at `address`,
    or FlashError if it does not fit between app_base and the end of the
    board's flash budget (message with the numbers)."""
    g = geometry or _geometry(board)
    native = g.to_native(address)
    end = native + image_len
    region = (f"{board.name}'s application flash is {g.app_base:#x}..{g.flash_end:#x} "
              f"({g.app_size} bytes = {g.app_size / 1024:g} KiB of the {g.flash_size // 1024} KiB "
              f"{board.part or 'part'}; the bootloader keeps {g.app_base - g.flash_base} bytes below it)")
    if image_len <= 0:
        raise FlashError("nothing to flash: the image is empty")
    if native < g.app_base or native >= g.flash_end:
        raise FlashError(f"cannot flash at {address:#x}: outside the application region; {region}")
    if end > g.flash_end:
        raise FlashError(
            f"image does not fit: {image_len} bytes ({image_len / 1024:.1f} KiB) at {native:#x} end at {end:#x}, "
            f"{end - g.flash_end} bytes beyond the flash budget; {region}"
        )
    unit = g.part.write_unit
    if native % unit:
        raise FlashError(f"cannot flash at {address:#x}: the address must be aligned to {unit} bytes "
                         f"(the flash write unit of {g.part.name})")
    return native


def _check_vectors(image: bytes, native: int, g: FlashGeometry) -> None:
    """GO starts the image through its vector table: refuse, before sending
    anything, an image that does not start with one (initial stack pointer,
    then a Thumb reset handler inside the image)."""
    if len(image) < 8:
        raise FlashError(f"cannot start a {len(image)}-byte image: no vector table; flash it with go=False")
    sp, pc = int.from_bytes(image[0:4], "little"), int.from_bytes(image[4:8], "little")
    entry = pc & ~1
    inside = any(base <= entry < base + len(image) for base in (native, g.to_wire(native)))
    if not (pc & 1) or not inside or sp == 0 or sp & 3 or sp == 0xFFFFFFFF:
        raise FlashError(
            f"the image does not start with a vector table (initial SP {sp:#010x}, reset handler {pc:#010x}; "
            f"expected a Thumb address inside the image at {native:#x}): is it a firmware .bin linked for "
            f"{g.board}? To write data without starting it, flash with go=False"
        )


def _geometry(board: Board) -> FlashGeometry:
    try:
        return flash_geometry(board)
    except BuildError as e:
        raise FlashError(str(e)) from None


def flash_image(port_url: str, image: bytes, address: int, board: Board, verify: bool = True,
                progress: Progress | None = None, *, method: str | None = None, go: bool = True,
                baud: int | None = None, retries: int = 5, timeout: float = 1.0,
                quiet: float = 0.4) -> FlashReport:
    """Flash `image` at `address` on `board` through `port_url` and start it.

    port_url: socket://127.0.0.1:PORT (QEMU), rfc2217://..., or a serial
    device (8E1 at the board's baud rate, as STM32 ROM bootloaders want).
    Raises FlashError (one line) on any failure; never reports success for an
    image that did not read back equal when verify is on.
    """
    method = method or board.flash_method or "stm32-serial"
    image = bytes(image)
    if method == "pyocd":
        return _flash_pyocd(image, address, board, verify, progress)
    if method != "stm32-serial":
        raise FlashError(f"unknown flash method '{method}'; known: {', '.join(METHODS)}")

    g = _geometry(board)
    size = len(image)
    native = check_fits(size, address, board, g)  # before any byte is sent
    if go:
        _check_vectors(image, native, g)
    unit = g.part.write_unit
    if len(image) % unit:  # flash is programmed in whole units: pad as erased flash
        image = image + b"\xff" * (unit - len(image) % unit)
        check_fits(len(image), address, board, g)
    wire = g.to_wire(native)
    pages = g.pages_for(native, native + len(image))
    baud = baud or int(board.console.get("baud", 115200))

    t0 = time.monotonic()
    report = FlashReport(bytes=size, seconds=0.0, kb_per_s=0.0, address=wire, method=method,
                         verified=False, started=False, pages_erased=pages)
    with Stm32Boot.open(port_url, baud, retries=retries, timeout=timeout, quiet=quiet) as bl:
        try:
            bl.connect()
            # GET and GET ID replies carry no checksum: a bad line can corrupt
            # them, so an unexpected answer is asked again before it is believed.
            needed = (CMD_READ, CMD_WRITE, CMD_EXT_ERASE, CMD_GO)
            info = _asked_again(bl.get, lambda i: all(i.supports(c) for c in needed))
            missing = [f"{c:#04x}" for c in needed if not info.supports(c)]
            if missing:
                raise FlashError(f"the bootloader on {port_url} lacks command(s) {', '.join(missing)} "
                                 f"(it offers {', '.join(f'{c:#04x}' for c in info.commands)})")
            pid = _asked_again(bl.get_id, lambda p: not g.product_id or p == g.product_id)
            report.product_id = pid
            if g.product_id and pid != g.product_id:
                raise FlashError(f"wrong board on {port_url}: product ID {pid:#05x}, but {board.name} "
                                 f"({g.part.name}) has {g.product_id:#05x}")

            if progress:
                progress("erase", 0, len(pages))
            bl.extended_erase(pages)
            if progress:
                progress("erase", len(pages), len(pages))

            tw = time.monotonic()
            bl.write_memory(wire, image, (lambda d, t: progress("write", min(d, len(image)), len(image)))
                            if progress else None)
            report.write_seconds = time.monotonic() - tw
            report.kb_per_s = len(image) / 1024 / max(report.write_seconds, 1e-9)

            if verify:
                tv = time.monotonic()
                report.repaired_blocks = _verify_and_repair(bl, g, wire, image, progress)
                report.verify_seconds = time.monotonic() - tv
                report.verified = True
            if go:
                bl.go(wire)
                report.started = True
        except (BootloaderNack, BootloaderTimeout, LinkLost) as e:
            raise type(e)(f"flashing {board.name} failed: {e}") from None
        finally:
            report.retries = bl.stats.retries
            report.resyncs = bl.stats.resyncs
    report.seconds = time.monotonic() - t0
    return report


def _asked_again(ask, good, times: int = 3):
    """The first answer of `ask()` that is `good`, asking up to `times` times;
    else the last answer if all agree (the unexpected answer is real)."""
    answers = []
    for _ in range(times):
        a = ask()
        if good(a):
            return a
        answers.append(a)
    if all(a == answers[0] for a in answers):
        return answers[0]
    raise FlashError(f"the bootloader gave {len(answers)} different answers to the same question "
                     f"({', '.join(map(str, answers))}): the line is too noisy")


def _verify_and_repair(bl: Stm32Boot, g: FlashGeometry, wire: int, image: bytes,
                       progress: Progress | None, rounds: int = 2) -> int:
    """Read the image back and compare. A block that differs is read again
    (READ data has no checksum: a bad line can fake a mismatch); one that still
    differs gets its sector(s) erased and rewritten, at most `rounds` times.
    Returns how many blocks were rewritten; FlashError if it never matches."""
    padded = image + b"\xff" * (-len(image) % 4)
    total = len(image)
    bad = _compare(bl, wire, image, range(0, total, BLOCK), progress)
    repaired = 0
    for _ in range(rounds):
        if not bad:
            return repaired
        native_bad = [g.to_native(wire) + off for off in bad]
        pages = sorted({p for a in native_bad for p in g.pages_for(a, a + BLOCK)})
        bl.extended_erase(pages)
        # Rewrite every block of the image that lies in those pages.
        offsets = []
        for p in pages:
            lo, hi = g.page_range(p)
            for off in range(0, total, BLOCK):
                a = g.to_native(wire) + off
                if a < hi and lo < a + BLOCK and off not in offsets:
                    offsets.append(off)
        for off in offsets:
            bl.write_memory(wire + off, padded[off:off + BLOCK])
        repaired += len(offsets)
        bad = _compare(bl, wire, image, offsets, None)
    if bad:
        off = bad[0]
        got = bl.read_memory(wire + off, min(BLOCK, total - off))
        want = image[off:off + BLOCK]
        i = next((k for k in range(len(got)) if got[k] != want[k]), 0)
        raise FlashError(f"verify failed: {len(bad)} block(s) differ after {rounds} repairs, first at "
                         f"{wire + off + i:#010x} (expected {want[i]:#04x}, read {got[i]:#04x})")
    return repaired


def _compare(bl: Stm32Boot, wire: int, image: bytes, offsets, progress: Progress | None) -> list[int]:
    bad = []
    total = len(image)
    for off in offsets:
        want = image[off:off + BLOCK]
        got = bl.read_memory(wire + off, len(want))
        if got != want:
            # Confirm: a flipped bit on the way back is not a bad block.
            if not any(bl.read_memory(wire + off, len(want)) == want for _ in range(2)):
                bad.append(off)
        if progress:
            progress("verify", min(off + BLOCK, total), total)
    return bad


def _flash_pyocd(image: bytes, address: int, board: Board, verify: bool, progress: Progress | None) -> FlashReport:
    try:
        from pyocd.core.helpers import ConnectHelper  # type: ignore[import-not-found]
        from pyocd.flash.file_programmer import FileProgrammer  # type: ignore[import-not-found]
    except ImportError:
        raise FlashError("pyocd is not installed; pip install pyocd, or use --method stm32-serial") from None
    if board.emulated:
        raise FlashError(f"pyocd needs a debug probe on a real board; {board.name} is emulated: "
                         "use --method stm32-serial")
    target = str(board.raw.get("flash", {}).get("pyocd_target") or board.part or "").lower()
    if not target:
        raise FlashError(f"board {board.name} names no part for pyocd ([flash] pyocd_target)")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "image.bin"
        path.write_bytes(image)
        try:
            session = ConnectHelper.session_with_chosen_probe(target_override=target, blocking=False)
            if session is None:
                raise FlashError("pyocd found no debug probe; connect one (ST-LINK, CMSIS-DAP, J-Link)")
            with session:
                FileProgrammer(session, progress=(lambda f: progress("write", int(f * len(image)), len(image)))
                               if progress else None).program(str(path), base_address=address, file_format="bin")
                if verify:
                    back = bytes(session.target.read_memory_block8(address, len(image)))
                    if back != image:
                        i = next(k for k in range(len(image)) if back[k] != image[k])
                        raise FlashError(f"verify failed at {address + i:#010x} (expected {image[i]:#04x}, "
                                         f"read {back[i]:#04x})")
        except FlashError:
            raise
        except Exception as e:  # pyocd raises many types; report them as one line
            raise FlashError(f"pyocd failed to flash {board.name}: {e}") from None
    dt = time.monotonic() - t0
    return FlashReport(bytes=len(image), seconds=dt, kb_per_s=len(image) / 1024 / max(dt, 1e-9), address=address,
                       method="pyocd", verified=verify, started=False)
