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
