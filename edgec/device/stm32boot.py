"""Host side of the STM32 USART bootloader protocol (ST AN3155) over pyserial.

One client for real STM32 parts (their ROM bootloader, 8E1 on a serial port)
and the emulated boards (edgec's bootloader, runtime_c/bootloader/, reached on
QEMU through a TCP socket or a pty):

    with Stm32Boot.open("socket://127.0.0.1:4444") as bl:
        bl.connect()
        bl.get_id()                       # 0x451
        bl.extended_erase([1, 2])         # or extended_erase() for a global erase
        bl.write_memory(0x08008000, data)
        bl.read_memory(0x08008000, len(data))
        bl.go(0x08008000)

The protocol, byte by byte: the host sends 0x7F once, the device answers ACK
(0x79). Every command is a code byte and its complement; the device answers
ACK, or NACK (0x1F) for an unknown or refused command. Addresses are 4 bytes
MSB first plus their XOR; lengths are sent as N-1; data blocks end with the
XOR of the length byte and the data. READ data carries no checksum.

Robustness: every exchange has a timeout; a command that gets a NACK, no
answer in time, or an unexpected byte is retried a bounded number of times
after a resynchronisation (wait until the line is quiet, send 0x7F, expect
ACK or NACK, wait until quiet again). A lost connection is not retried.
Every failure is a `FlashError` (an `EdgecError`) with a one-line message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import serial

from edgec.errors import EdgecError

__all__ = [
    "ACK",
    "NACK",
    "SYNC",
    "BootloaderInfo",
    "BootloaderNack",
    "BootloaderTimeout",
    "FlashError",
    "LinkLost",
    "Stm32Boot",
    "is_emulated_url",
]

ACK = 0x79
NACK = 0x1F
SYNC = 0x7F

CMD_GET = 0x00
CMD_GET_VERSION = 0x01
CMD_GET_ID = 0x02
CMD_READ = 0x11
CMD_GO = 0x21
CMD_WRITE = 0x31
CMD_ERASE = 0x43
CMD_EXT_ERASE = 0x44

COMMAND_NAMES = {
    CMD_GET: "GET",
    CMD_GET_VERSION: "GET VERSION",
    CMD_GET_ID: "GET ID",
    CMD_READ: "READ MEMORY",
    CMD_GO: "GO",
    CMD_WRITE: "WRITE MEMORY",
    CMD_ERASE: "ERASE",
    CMD_EXT_ERASE: "EXTENDED ERASE",
}

_POLL = 0.02  # seconds per low-level read call
BLOCK = 256  # AN3155: at most 256 bytes per READ/WRITE
ERASE_CHUNK = 256  # pages per EXTENDED ERASE command


class FlashError(EdgecError):
    """Flashing or talking to a bootloader failed."""


class BootloaderTimeout(FlashError):
    """The bootloader did not answer in time."""


class BootloaderNack(FlashError):
    """The bootloader refused a command (NACK) every time it was tried."""


class LinkLost(FlashError):
    """The serial connection went away."""


# Internal: one failed exchange, retried by `_transaction`.
class _Transient(Exception):
    pass


class _Nack(_Transient):
    pass


class _AddressNack(_Nack):
    """NACK right after an address: the address is refused (or was corrupted)."""


class _Timeout(_Transient):
    pass


class _Garbage(_Transient):
    pass


class _Started(Exception):
    """GO was acknowledged: whatever follows is the application's output."""


@dataclass(frozen=True)
class BootloaderInfo:
    """Answer to GET: protocol version (0x31 = 3.1) and the command codes supported."""

    version: int
    commands: tuple[int, ...]

    def supports(self, cmd: int) -> bool:
        return cmd in self.commands


@dataclass
class LinkStats:
    bytes_sent: int = 0
    bytes_received: int = 0
    retries: int = 0
    resyncs: int = 0
    nacks: int = 0
    timeouts: int = 0
    history: list[str] = field(default_factory=list)  # the last few retry reasons

    def note(self, what: str) -> None:
        self.history.append(what)
        del self.history[:-20]


def is_emulated_url(url: str) -> bool:
    """socket:// (QEMU's TCP serial), loop:// and pseudo-terminals (QEMU's
    -serial pty) carry bytes, not a UART: no parity there (QEMU does not
    emulate it and Linux ptys clear PARENB)."""
    return url.startswith(("socket://", "loop://", "/dev/pts/"))


def _xor(data: bytes) -> int:
    x = 0
    for b in data:
        x ^= b
    return x


def _addr_frame(addr: int) -> bytes:
    a = (addr & 0xFFFFFFFF).to_bytes(4, "big")
    return a + bytes([_xor(a)])


class Stm32Boot:
    """A session with an AN3155 bootloader on an open pyserial port.

    timeout      seconds to wait for an ACK or data (READ, GET...)
    sync_timeout seconds to wait for the answer to 0x7F
    quiet        seconds without a byte that make the line "quiet" when
                 resynchronising; must exceed the bootloader's inter-byte
                 timeout (edgec's: about 0.2 s on QEMU)
    retries      extra attempts of a failed command (after a resync)
    """

    def __init__(self, port: serial.SerialBase, *, url: str = "", timeout: float = 1.0,
                 sync_timeout: float = 1.0, quiet: float = 0.4, retries: int = 5,
                 erase_timeout: float = 30.0) -> None:
        self.port = port
        self.url = url or getattr(port, "portstr", "") or "serial port"
        self.timeout = timeout
        self.sync_timeout = sync_timeout
        self.quiet = quiet
        self.retries = retries
        self.erase_timeout = erase_timeout
        self.stats = LinkStats()
        self.synced = False
        try:
            if port.timeout != _POLL:
                port.timeout = _POLL  # reads below poll in short steps up to their own deadline
        except (serial.SerialException, OSError, ValueError) as e:
            raise FlashError(f"cannot configure {self.url}: {e}") from None
        self.info: BootloaderInfo | None = None

    # --- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, url: str, baud: int = 115200, **kwargs) -> Stm32Boot:
        """Open `url` (socket://, rfc2217://, a device path) for the bootloader:
        8E1 at `baud` on real ports (as STM32 ROM bootloaders require), no
        parity where there is no UART (see `is_emulated_url`)."""
        parity = serial.PARITY_NONE if is_emulated_url(url) else serial.PARITY_EVEN
        try:
            port = serial.serial_for_url(url, baudrate=baud, bytesize=serial.EIGHTBITS, parity=parity,
                                         stopbits=serial.STOPBITS_ONE, timeout=_POLL, write_timeout=10)
        except (serial.SerialException, OSError, ValueError) as e:
            raise FlashError(f"cannot open {url}: {e}") from None
        return cls(port, url=url, **kwargs)

    def close(self) -> None:
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass

    def __enter__(self) -> Stm32Boot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- bytes -------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkLost(f"connection to {self.url} lost: {e}") from None
        self.stats.bytes_sent += len(data)

    def _read(self, n: int, timeout: float) -> bytes:
        """Up to n bytes, waiting at most `timeout` seconds in all."""
        out = bytearray()
        deadline = time.monotonic() + timeout
        while len(out) < n:
            if time.monotonic() >= deadline:
                break
            try:
                chunk = self.port.read(n - len(out))
            except (serial.SerialException, OSError) as e:
                raise LinkLost(f"connection to {self.url} lost: {e}") from None
            out += chunk
        self.stats.bytes_received += len(out)
        return bytes(out)

    def _read_exact(self, n: int, timeout: float, what: str) -> bytes:
        data = self._read(n, timeout)
        if len(data) < n:
            raise _Timeout(f"{what}: {len(data)} of {n} bytes within {timeout:g} s")
        return data

    def _ack(self, what: str, timeout: float | None = None) -> None:
        b = self._read(1, self.timeout if timeout is None else timeout)
        if not b:
            raise _Timeout(f"no ACK for {what} within {self.timeout if timeout is None else timeout:g} s")
        if b[0] == ACK:
            return
        if b[0] == NACK:
            raise _Nack(f"NACK for {what}")
        raise _Garbage(f"byte {b[0]:#04x} instead of ACK for {what}")

    def _address_ack(self, what: str) -> None:
        try:
            self._ack(what)
        except _Nack as e:
            raise _AddressNack(str(e)) from None

    def _pending(self) -> int:
        try:
            return self.port.in_waiting
        except (serial.SerialException, OSError) as e:
            raise LinkLost(f"connection to {self.url} lost: {e}") from None

    def _drain_until_quiet(self, quiet: float, limit: float = 10.0) -> int:
        """Read and drop bytes until none came for `quiet` seconds."""
        dropped = 0
        end = time.monotonic() + limit
        while time.monotonic() < end:
            b = self._read(4096, quiet) if quiet > 0 else b""
            if not b:
                n = self._pending()
                if n == 0:
                    return dropped
                b = self._read(n, 0.01)
            dropped += len(b)
        return dropped

    # --- synchronisation -----------------------------------------------------------

    def connect(self, attempts: int | None = None) -> None:
        """Synchronise with the bootloader: 0x7F, answered by ACK.

        A bootloader that is already synchronised answers too (see `_probe`).
        Raises BootloaderTimeout after `attempts` tries without an answer.
        """
        self._probe(attempts or max(3, self.retries + 1), first_quiet=0.05, what="synchronisation")
        self.synced = True

    def resync(self) -> None:
        """Bring the bootloader back to waiting for a command after a failed exchange."""
        self.stats.resyncs += 1
        self._probe(max(3, self.retries + 1), first_quiet=0.1, what="resynchronisation")

    def _probe(self, attempts: int, first_quiet: float, what: str) -> None:
        """Send one 0x7F and wait for ACK or NACK, whatever state the bootloader is in:

        * waiting for a command: 0x7F is taken as a command byte; edgec's
          bootloader answers a lone 0x7F with ACK after its inter-byte timeout
          (a ROM bootloader that is not yet synchronised answers ACK at once);
        * holding the first byte of a command: the pair is wrong -> NACK;
        * inside a command: the byte is taken as data; the command ends with
          NACK (bad checksum, or the inter-byte timeout).

        A single byte (never a pair) is what makes this converge: a pair can
        leave its second byte pending. The answer must be the last byte for
        `quiet` seconds (the bootloader is then waiting for a command);
        anything after it means an older exchange was still running: again.
        """
        reasons = []
        for i in range(attempts):
            self._drain_until_quiet(first_quiet if i == 0 else self.quiet)
            self._write(bytes([SYNC]))
            b = self._read(1, self.sync_timeout)
            if b and b[0] in (ACK, NACK):
                if self._drain_until_quiet(self.quiet) == 0:
                    return
                reasons.append("more bytes after the answer")
            else:
                reasons.append(f"got {b[0]:#04x}" if b else "no answer")
        raise BootloaderTimeout(
            f"no answer to the 0x7F {what} byte from {self.url} after {attempts} attempts "
            f"({', '.join(reasons[-3:])}): is the board running its bootloader?"
        )

    # --- one command, with retries ------------------------------------------------------

    def _transaction(self, name: str, fn: Callable[[], object], retries: int | None = None,
                     retry_on: type[_Transient] = _Transient):
        if not self.synced:
            self.connect()
        retries = self.retries if retries is None else retries
        last: _Transient | None = None
        address_nacks = 0
        attempts = 0
        for attempt in range(retries + 1):
            attempts += 1
            if attempt:
                self.stats.retries += 1
                self.resync()
            try:
                # Bytes waiting before a command are left from a confused
                # exchange: start from a quiet line.
                if self._pending():
                    raise _Garbage("unexpected bytes before the command")
                result = fn()
                if self._pending():
                    raise _Garbage("unexpected bytes after the answer")
                return result
            except _Transient as e:
                last = e
                if isinstance(e, _Nack):
                    self.stats.nacks += 1
                elif isinstance(e, _Timeout):
                    self.stats.timeouts += 1
                self.stats.note(f"{name}: {e}")
                if not isinstance(e, retry_on):
                    break
                # An address refused twice in a row is refused for good (a
                # corrupted address is rarely corrupted twice).
                address_nacks = address_nacks + 1 if isinstance(e, _AddressNack) else 0
                if address_nacks >= 2:
                    break
        cls = BootloaderNack if isinstance(last, _Nack) else BootloaderTimeout
        raise cls(f"{name} failed after {attempts} attempt{'s' if attempts > 1 else ''} on {self.url}: {last}")

    def _command(self, cmd: int, timeout: float | None = None) -> None:
        self._write(bytes([cmd, cmd ^ 0xFF]))
        self._ack(f"command {cmd:#04x} ({COMMAND_NAMES.get(cmd, '?')})", timeout)

    # --- commands ---------------------------------------------------------------------

    def get(self) -> BootloaderInfo:
        """GET (0x00): protocol version and supported commands."""

        def run() -> BootloaderInfo:
            self._command(CMD_GET)
            n = self._read_exact(1, self.timeout, "GET length")[0]
            body = self._read_exact(n + 1, self.timeout, "GET reply")
            self._ack("end of GET")
            return BootloaderInfo(body[0], tuple(body[1:]))

        self.info = self._transaction("GET", run)
        return self.info

    def get_version(self) -> tuple[int, int, int]:
        """GET VERSION & READ PROTECTION STATUS (0x01): (version, option 1, option 2)."""

        def run() -> tuple[int, int, int]:
            self._command(CMD_GET_VERSION)
            body = self._read_exact(3, self.timeout, "GET VERSION reply")
            self._ack("end of GET VERSION")
            return body[0], body[1], body[2]

        return self._transaction("GET VERSION", run)

    def get_id(self) -> int:
        """GET ID (0x02): the product ID (e.g. 0x451 for STM32F76x/F77x)."""

        def run() -> int:
            self._command(CMD_GET_ID)
            n = self._read_exact(1, self.timeout, "GET ID length")[0]
            body = self._read_exact(n + 1, self.timeout, "GET ID reply")
            self._ack("end of GET ID")
            return int.from_bytes(body, "big")

        return self._transaction("GET ID", run)

    def read_memory(self, address: int, length: int,
                    progress: Callable[[int, int], None] | None = None) -> bytes:
        """READ MEMORY (0x11) of `length` bytes from `address`, in blocks of 256."""
        out = bytearray()
        while len(out) < length:
            n = min(BLOCK, length - len(out))
            a = address + len(out)

            def run(a: int = a, n: int = n) -> bytes:
                self._command(CMD_READ)
                self._write(_addr_frame(a))
                self._address_ack(f"READ address {a:#010x} (refused, or corrupted on the line)")
                self._write(bytes([n - 1, (n - 1) ^ 0xFF]))
                self._ack(f"READ length {n} at {a:#010x}")
                return self._read_exact(n, self.timeout, f"READ {n} bytes at {a:#010x}")

            out += self._transaction(f"READ MEMORY at {a:#010x}", run)
            if progress:
                progress(len(out), length)
        return bytes(out)

    def write_memory(self, address: int, data: bytes,
                     progress: Callable[[int, int], None] | None = None) -> None:
        """WRITE MEMORY (0x31) in blocks of 256; the data is padded with 0xFF to a
        multiple of 4 bytes (flash is programmed in words). `address` must be
        4-byte aligned."""
        if address & 3:
            raise FlashError(f"WRITE MEMORY address {address:#010x} is not 4-byte aligned")
        data = bytes(data)
        if len(data) % 4:
            data += b"\xff" * (4 - len(data) % 4)
        done = 0
        while done < len(data):
            block = data[done:done + BLOCK]
            a = address + done
            frame = bytes([len(block) - 1]) + block
            frame += bytes([_xor(frame)])

            def run(a: int = a, frame: bytes = frame) -> None:
                self._command(CMD_WRITE)
                self._write(_addr_frame(a))
                self._address_ack(f"WRITE address {a:#010x} (refused, or corrupted on the line)")
                self._write(frame)
                self._ack(f"WRITE {len(frame) - 2} bytes at {a:#010x}")

            self._transaction(f"WRITE MEMORY at {a:#010x}", run)
            done += len(block)
            if progress:
                progress(min(done, len(data)), len(data))

    def extended_erase(self, pages: Sequence[int] | None = None) -> None:
        """EXTENDED ERASE (0x44): the given page (sector) numbers, or a global
        erase (0xFFFF) when `pages` is None."""
        if pages is None:

            def run_all() -> None:
                self._command(CMD_EXT_ERASE)
                self._write(b"\xff\xff\x00")
                self._ack("global erase (0xFFFF)", self.erase_timeout)

            self._transaction("EXTENDED ERASE (global)", run_all)
            return
        pages = list(pages)
        if not pages:
            return
        for p in pages:
            if not 0 <= p < 0xFFF0:
                raise FlashError(f"EXTENDED ERASE: page number {p} out of range")
        for i in range(0, len(pages), ERASE_CHUNK):
            chunk = pages[i:i + ERASE_CHUNK]
            body = (len(chunk) - 1).to_bytes(2, "big") + b"".join(p.to_bytes(2, "big") for p in chunk)
            body += bytes([_xor(body)])

            def run(body: bytes = body, chunk: list[int] = chunk) -> None:
                self._command(CMD_EXT_ERASE)
                self._write(body)
                self._ack(f"erase of pages {chunk[0]}..{chunk[-1]}", self.erase_timeout)

            self._transaction(f"EXTENDED ERASE of {len(chunk)} page(s) from {chunk[0]}", run)

    def go(self, address: int) -> None:
        """GO (0x21): jump to the vector table at `address` (MSP from its first
        word, PC from its second). The bootloader is left; the session ends."""

        def run() -> None:
            self._command(CMD_GO)
            self._write(_addr_frame(address))
            self._address_ack(f"GO address {address:#010x} (no valid vector table there, or corrupted on the line)")
            raise _Started()

        # Only a NACK is retried: after a lost ACK the application may already
        # run, and the bytes it prints must not be taken for the bootloader's.
        try:
            self._transaction(f"GO {address:#010x}", run, retries=min(self.retries, 2), retry_on=_Nack)
        except _Started:
            self.synced = False
            return
        except BootloaderTimeout as e:
            self.synced = False
            raise BootloaderTimeout(f"{e} (the application may have started anyway)") from None
        self.synced = False
