"""Host side of the edgec serial protocol (docs/protocol.md): COBS frames with
CRC-32, sequence numbers, bounded retries. A result that failed its check is
never returned: either the reply is proven intact or the call raises."""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any

from edgec.errors import EdgecError

MAX_PAYLOAD = 512
CHUNK = 480

CMD_INFO, CMD_WRITE_INPUT, CMD_INVOKE, CMD_READ_OUTPUT, CMD_PROFILE, CMD_RESET, CMD_ECHO = range(1, 8)
STATUS = {0: "ok", 1: "unknown command", 2: "bad arguments", 3: "wrong state", 4: "model error"}


class LinkError(EdgecError):
    """The board did not answer, or every answer failed its integrity check."""


class BoardReplyError(EdgecError):
    """The board answered with an error status."""


def cobs_encode(data: bytes) -> bytes:
    out = bytearray([0])
    code_pos, code = 0, 1
    for b in data:
        if b == 0:
            out[code_pos] = code
            code_pos, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_pos] = code
                code_pos, code = len(out), 1
                out.append(0)
    out[code_pos] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """None for an invalid encoding."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            return None
        end = i + code
        if end > n:
            return None
        chunk = data[i + 1 : end]
        if 0 in chunk:
            return None
        out += chunk
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def frame(payload: bytes) -> bytes:
    return cobs_encode(payload + struct.pack("<I", zlib.crc32(payload))) + b"\x00"


def unframe(body: bytes) -> bytes | None:
    """The payload of one frame (without its 0x00), or None if it fails a check."""
    raw = cobs_decode(body)
    if raw is None or len(raw) < 4:
        return None
    payload, crc = raw[:-4], struct.unpack("<I", raw[-4:])[0]
    return payload if zlib.crc32(payload) == crc else None


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0
    bad_frames: int = 0


class Link:
    """One request at a time over a pyserial port (socket://, rfc2217://, /dev/tty...)."""

    def __init__(self, url: str, timeout: float = 2.0, attempts: int = 5, baud: int = 115200):
        import serial

        try:
            self._port = serial.serial_for_url(url, baudrate=baud, timeout=0.05)
        except (serial.SerialException, ValueError, OSError) as e:
            raise LinkError(f"cannot open serial port {url}: {' '.join(str(e).split())}") from None
        self.url = url
        self.timeout = timeout
        self.attempts = attempts
        self.seq = int(time.monotonic_ns()) & 0xFF
        self.stats = LinkStats()
        self._buf = bytearray()

    def close(self) -> None:
        self._port.close()

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport ---------------------------------------------------------
    def _read_frame(self, deadline: float) -> bytes | None:
        while time.monotonic() < deadline:
            k = self._buf.find(0)
            if k >= 0:
                body = bytes(self._buf[:k])
                del self._buf[: k + 1]
                if body:
                    return body
                continue
            chunk = self._port.read(max(1, self._port.in_waiting or 1))
            if chunk:
                self._buf += chunk
                if len(self._buf) > 4 * MAX_PAYLOAD:  # noise without delimiters
                    del self._buf[: -2 * MAX_PAYLOAD]
        return None

    def request(self, cmd: int, args: bytes = b"", timeout: float | None = None) -> bytes:
        self.seq = (self.seq + 1) & 0xFF
        seq = self.seq
        payload = bytes([seq, cmd]) + args
        if len(payload) > MAX_PAYLOAD:
            raise ValueError("payload too large")
        self.stats.requests += 1
        wait = timeout or self.timeout
        for attempt in range(self.attempts):
            if attempt:
                self.stats.retries += 1
            self._port.write(frame(payload))
            self._port.flush()
            deadline = time.monotonic() + wait
            while True:
                body = self._read_frame(deadline)
                if body is None:
                    break  # timeout: resend the same seq (the board answers from its memory)
                reply = unframe(body)
                if reply is None or len(reply) < 3:
                    self.stats.bad_frames += 1
                    continue
                if reply[0] != seq or reply[1] != (cmd | 0x80):
                    self.stats.bad_frames += 1  # a stale reply to an earlier attempt
                    continue
                status = reply[2]
                if status != 0:
                    raise BoardReplyError(f"board refused command {cmd:#04x}: {STATUS.get(status, status)}")
                return reply[3:]
            self._buf.clear()
        raise LinkError(
            f"no valid reply from the board on {self.url} after {self.attempts} attempts of {wait:g} s "
            f"(command {cmd:#04x}); is it running the edgec firmware?"
        )

    # ---- commands ------------------------------------------------------------
    def echo(self, data: bytes) -> bytes:
        return self.request(CMD_ECHO, data)

    def info(self) -> dict[str, Any]:
        text = b""
        total = None
        while total is None or len(text) < total:
            r = self.request(CMD_INFO, struct.pack("<H", len(text)))
            total = struct.unpack("<H", r[:2])[0]
            if len(r) <= 2 and len(text) < total:
                raise LinkError("INFO reply made no progress")
            text += r[2:]
        try:
            return json.loads(text[:total].decode())
        except ValueError:
            raise LinkError("the board's INFO is not valid JSON") from None

    def write_input(self, index: int, data: bytes) -> None:
        for off in range(0, len(data), CHUNK):
            self.request(CMD_WRITE_INPUT, struct.pack("<BI", index, off) + data[off : off + CHUNK])

    def invoke(self, timeout: float = 60.0) -> int:
        r = self.request(CMD_INVOKE, timeout=timeout)
        lo, hi = struct.unpack("<II", r[:8])
        return lo | (hi << 32)

    def read_output(self, index: int, nbytes: int) -> bytes:
        out = bytearray()
        while len(out) < nbytes:
            n = min(500, nbytes - len(out))
            r = self.request(CMD_READ_OUTPUT, struct.pack("<BIH", index, len(out), n))
            if len(r) != n:
                raise LinkError(f"READ_OUTPUT returned {len(r)} bytes, asked {n}")
            out += r
        return bytes(out)

    def profile(self, n_layers: int) -> list[int]:
        counts: list[int] = []
        while len(counts) < n_layers:
            want = min(60, n_layers - len(counts))
            r = self.request(CMD_PROFILE, struct.pack("<HH", len(counts), want))
            n = struct.unpack("<H", r[:2])[0]
            if n == 0:
                raise LinkError("PROFILE returned no layers")
            counts += list(struct.unpack(f"<{n}Q", r[2 : 2 + 8 * n]))
        return counts

    def reset(self) -> None:
        self.request(CMD_RESET)
