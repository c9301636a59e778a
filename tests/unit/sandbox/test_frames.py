"""Length-prefixed frames: exact payloads however the bytes arrive, and bounded."""

from __future__ import annotations

import pytest

from coderl.sandbox.frames import MAX_HEADER, FrameError, FrameReader, frame


def read_all(reader: FrameReader) -> list[bytes]:
    out = []
    while (p := reader.next()) is not None:
        out.append(p)
    return out


def test_frames_split_at_every_byte_come_out_whole():
    payloads = [b"", b"x", b"hello\nworld", bytes(range(256)) * 3]
    data = b"".join(frame(p) for p in payloads)
    reader = FrameReader(limit=1 << 20)
    got: list[bytes] = []
    for i in range(len(data)):
        reader.feed(data[i:i + 1])
        got += read_all(reader)
    assert got == payloads


def test_a_header_that_is_not_a_length_is_tampering():
    for bad in (b"x\n", b"-1\n", b" 5\n", b"1" * (MAX_HEADER + 1)):
        reader = FrameReader(limit=100)
        reader.feed(bad)
        with pytest.raises(FrameError) as e:
            read_all(reader)
        assert e.value.reason == "tampered"


def test_a_payload_over_the_limit_is_refused_before_it_is_read():
    reader = FrameReader(limit=10)
    reader.feed(b"11\n")
    with pytest.raises(FrameError) as e:
        reader.next()
    assert e.value.reason == "output_limit"
    reader = FrameReader(limit=10)
    reader.feed(frame(b"0123456789"))
    assert reader.next() == b"0123456789"
