"""Length-prefixed frames on a pipe: ``<decimal length>\\n<payload>``, the format of both directions between a
sandboxed child and its judge.

Parsing is linear in the bytes received (no rescans of a growing buffer) and bounded: a header longer than
:data:`MAX_HEADER` bytes or a payload over the reader's limit is an error, found before the payload is read.
"""

from __future__ import annotations

import os

MAX_HEADER = 12


class FrameError(Exception):
    """Bytes that are not a frame (``reason`` is ``tampered``) or a frame over the limit (``output_limit``)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def frame(payload: bytes) -> bytes:
    return b"%d\n" % len(payload) + payload


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class FrameReader:
    """Accumulates bytes and returns whole frames, at most ``limit`` bytes of payload each."""

    def __init__(self, limit: int):
        self.limit = limit
        self._buf = bytearray()
        self._need = -1  # payload length of the frame being read, once its header is complete

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk

    def next(self) -> bytes | None:
        """The next complete payload, or None while more bytes are needed. Raises FrameError."""
        if self._need < 0:
            nl = self._buf.find(b"\n", 0, MAX_HEADER + 1)
            if nl < 0:
                if len(self._buf) > MAX_HEADER:
                    raise FrameError("tampered")
                return None
            head = bytes(self._buf[:nl])
            if not head.isdigit():
                raise FrameError("tampered")
            self._need = int(head)
            if self._need > self.limit:
                raise FrameError("output_limit")
            del self._buf[:nl + 1]
        if len(self._buf) < self._need:
            return None
        payload = bytes(self._buf[:self._need])
        del self._buf[:self._need]
        self._need = -1
        return payload

    def want(self) -> int:
        """How many more bytes would complete the frame being read (a hint for read sizes)."""
        return max(self._need - len(self._buf), 1 << 16) if self._need >= 0 else 1 << 16
