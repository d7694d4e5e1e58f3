"""The host side of the serial protocol, without a board: framing properties."""

from __future__ import annotations

import random

from edgec.device.link import cobs_decode, cobs_encode, frame, unframe


def test_cobs_round_trip_and_no_zero_bytes():
    rng = random.Random(0)
    for n in list(range(0, 300)) + [253, 254, 255, 256, 509, 510, 511, 512]:
        d = bytes(rng.choice([0, 0, 1, 255, rng.randrange(256)]) for _ in range(n))
        e = cobs_encode(d)
        assert 0 not in e
        assert cobs_decode(e) == d


def test_known_cobs_vectors():
    # vectors from the COBS paper / Wikipedia
    assert cobs_encode(b"\x00") == b"\x01\x01"
    assert cobs_encode(b"\x00\x00") == b"\x01\x01\x01"
    assert cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert cobs_encode(b"\x11\x00\x00\x00") == b"\x02\x11\x01\x01\x01"
    assert cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255)) + b"\x01"


def test_every_single_bit_flip_or_drop_is_detected():
    payload = bytes([7, 3]) + bytes(range(40))
    f = frame(payload)[:-1]
    assert unframe(f) == payload
    for i in range(len(f)):
        for bit in range(8):
            bad = bytearray(f)
            bad[i] ^= 1 << bit
            if 0 in bad:
                continue  # a flip to 0x00 splits the frame: the receiver sees two bad frames
            assert unframe(bytes(bad)) is None, (i, bit)
        assert unframe(f[:i] + f[i + 1 :]) is None, i


def test_port_not_found_is_one_clear_line(tmp_path, examples_dir):
    import socket

    from click.testing import CliRunner

    from edgec.cli import main
    from edgec.compiler import compile_model

    compile_model(examples_dir / "tiny_transformer.onnx", "host", build=False, out_dir=tmp_path / "b")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(main, ["run", str(tmp_path / "b"), "--port", f"socket://127.0.0.1:{port}"])
    assert res.exit_code == 2
    err = res.stderr.strip()
    assert err.startswith("error: cannot open serial port") and len(err.splitlines()) == 1
    res = CliRunner().invoke(main, ["run", str(tmp_path / "b"), "--port", "/dev/ttyEDGEC_NOPE"])
    assert res.exit_code == 2 and "cannot open serial port /dev/ttyEDGEC_NOPE" in res.stderr


def test_board_not_answering_times_out_with_a_clear_error():
    import socket
    import threading

    import pytest

    from edgec.device.link import Link, LinkError

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = bytearray()

    def swallow():
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(3)
            try:
                while chunk := conn.recv(4096):
                    got.extend(chunk)
            except OSError:
                pass

    t = threading.Thread(target=swallow, daemon=True)
    t.start()
    try:
        with Link(f"socket://127.0.0.1:{srv.getsockname()[1]}", timeout=0.2, attempts=3) as link:
            with pytest.raises(LinkError, match="no valid reply from the board .* after 3 attempts"):
                link.info()
            assert link.stats.retries == 2
    finally:
        srv.close()
    assert got.count(b"\x00") == 3  # three framed attempts were sent
