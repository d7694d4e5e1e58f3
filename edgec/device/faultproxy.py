"""A fault-injection TCP proxy for testing serial protocols against a bad line.

Sits between a host program and an emulated board's TCP serial port (QEMU
`-serial tcp:...`), listening on 127.0.0.1 on a free port. With a seeded RNG
it drops bytes, flips one bit of a byte, or duplicates bytes, independently
in each direction, at given per-byte rates, and counts what it injected:

    with FaultProxy(inst.url, seed=1, drop=0.002, flip=0.002, dup=0.001) as proxy:
        flash_image(proxy.url, image, address, board)
        print(proxy.summary())     # to_board: 20345 B, 41 dropped, ...

Rates apply per byte and per direction (`to_board`: host -> board, `to_host`:
board -> host); give `to_board=FaultRates(...)`/`to_host=...` to set them
separately. Each direction has its own RNG seeded from `seed`, so the faults a
given byte stream meets do not depend on how the bytes were chunked. Faults
are only injected while `enabled` is true (it can be switched at any time,
e.g. after a handshake). `kill_connections()` cuts the current connection
(a pulled cable); the proxy keeps listening for the next one. One client
connection at a time is forwarded to one new upstream connection.

The proxy is a daemon thread; `stop()` (or leaving the `with` block) closes
every socket and joins it.
"""

from __future__ import annotations

import random
import selectors
import socket
import threading
from dataclasses import dataclass

__all__ = ["FaultCounts", "FaultProxy", "FaultRates"]

DIRECTIONS = ("to_board", "to_host")


@dataclass(frozen=True)
class FaultRates:
    """Per-byte probabilities; their sum must be <= 1."""

    drop: float = 0.0
    flip: float = 0.0
    dup: float = 0.0

    def __post_init__(self) -> None:
        for name in ("drop", "flip", "dup"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"fault rate {name}={v} is not a probability")
        if self.drop + self.flip + self.dup > 1.0:
            raise ValueError("fault rates add up to more than 1")

    @property
    def any(self) -> bool:
        return self.drop + self.flip + self.dup > 0


@dataclass
class FaultCounts:
    """What one direction carried and what was done to it."""

    bytes: int = 0  # bytes received from the sender
    dropped: int = 0
    flipped: int = 0
    duplicated: int = 0

    @property
    def injected(self) -> int:
        return self.dropped + self.flipped + self.duplicated

    def __str__(self) -> str:
        return f"{self.bytes} B, {self.dropped} dropped, {self.flipped} bit-flipped, {self.duplicated} duplicated"


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    closed: bool = False


class _Mangler:
    def __init__(self, rates: FaultRates, seed: int, direction: str) -> None:
        self.rates = rates
        self.rng = random.Random(f"{seed}/{direction}")
        self.counts = FaultCounts()

    def apply(self, data: bytes, enabled: bool) -> bytes:
        self.counts.bytes += len(data)
        r = self.rates
        if not enabled or not r.any:
            return data
        out = bytearray()
        p_drop, p_flip, p_dup = r.drop, r.drop + r.flip, r.drop + r.flip + r.dup
        for b in data:
            x = self.rng.random()
            if x < p_drop:
                self.counts.dropped += 1
            elif x < p_flip:
                out.append(b ^ (1 << self.rng.randrange(8)))
                self.counts.flipped += 1
            elif x < p_dup:
                out += bytes((b, b))
                self.counts.duplicated += 1
            else:
                out.append(b)
        return bytes(out)


def _parse_upstream(upstream: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(upstream, tuple):
        return upstream
    u = upstream
    if u.startswith("socket://"):
        u = u[len("socket://"):]
    u = u.split("?")[0].rstrip("/")
    host, _, port = u.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"upstream must be socket://HOST:PORT or (host, port), got {upstream!r}")
    return host, int(port)


class FaultProxy:
    """TCP proxy 127.0.0.1:<free port> -> upstream, injecting byte faults."""

    def __init__(self, upstream: str | tuple[str, int], *, seed: int = 0, drop: float = 0.0,
                 flip: float = 0.0, dup: float = 0.0, to_board: FaultRates | None = None,
                 to_host: FaultRates | None = None, enabled: bool = True,
                 connect_timeout: float = 5.0) -> None:
        both = FaultRates(drop, flip, dup)
        self.upstream = _parse_upstream(upstream)
        self.seed = seed
        self.rates = {"to_board": to_board or both, "to_host": to_host or both}
        self._manglers = {d: _Mangler(self.rates[d], seed, d) for d in DIRECTIONS}
        self.enabled = enabled
        self.connect_timeout = connect_timeout
        self.connections = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._sel = selectors.DefaultSelector()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._kill = threading.Event()

    # --- public ----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    @property
    def counts(self) -> dict[str, FaultCounts]:
        return {d: m.counts for d, m in self._manglers.items()}

    @property
    def injected(self) -> int:
        return sum(c.injected for c in self.counts.values())

    def summary(self) -> str:
        return "; ".join(f"{d}: {c}" for d, c in self.counts.items())

    def start(self) -> FaultProxy:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"faultproxy:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._close_all()
        for s in (self._listener, self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass
        try:
            self._sel.close()
        except (OSError, ValueError, KeyError):
            pass

    def kill_connections(self) -> None:
        """Cut the current connection(s) at once, as a pulled cable would."""
        self._kill.set()
        self._poke()
        # Also shut the sockets down from this thread so the peers see it now.
        with self._lock:
            for p in self._pairs:
                for s in (p.client, p.upstream):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the thread -------------------------------------------------------------------

    def _poke(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _run(self) -> None:
        self._sel.register(self._listener, selectors.EVENT_READ, ("accept", None))
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        while not self._stop.is_set():
            if self._kill.is_set():
                self._kill.clear()
                self._close_all()
            try:
                events = self._sel.select(timeout=0.5)
            except (OSError, ValueError):
                break
            for key, _ in events:
                kind, pair = key.data
                if kind == "wake":
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                elif kind == "accept":
                    self._accept()
                else:
                    self._forward(key.fileobj, kind, pair)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        try:
            up = socket.create_connection(self.upstream, timeout=self.connect_timeout)
        except OSError as e:
            self.errors.append(f"cannot connect to upstream {self.upstream}: {e}")
            client.close()
            return
        for s in (client, up):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(10.0)
        pair = _Pair(client, up)
        with self._lock:
            self._pairs.append(pair)
        self.connections += 1
        self._sel.register(client, selectors.EVENT_READ, ("to_board", pair))
        self._sel.register(up, selectors.EVENT_READ, ("to_host", pair))

    def _forward(self, sock: socket.socket, direction: str, pair: _Pair) -> None:
        if pair.closed:
            return
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            self._close(pair)
            return
        out = self._manglers[direction].apply(data, self.enabled)
        dest = pair.upstream if direction == "to_board" else pair.client
        if out:
            try:
                dest.sendall(out)
            except OSError:
                self._close(pair)

    def _close(self, pair: _Pair) -> None:
        if pair.closed:
            return
        pair.closed = True
        for s in (pair.client, pair.upstream):
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError, OSError):
                pass
            try:
                s.close()
            except OSError:
                pass
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)

    def _close_all(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
        for p in pairs:
            self._close(p)
