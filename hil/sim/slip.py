"""SLIP framing (RFC 1055) as the ESP ROM serial loader uses it: ``C0 … C0`` with ``DB DC``/``DB DD``.

Encoding is one pure function; decoding is a small stream decoder because frames arrive split across
reads. Both work on whole chunks with ``bytes.replace``/``split`` (never byte by byte): the loader
moves megabytes through here.
"""

from __future__ import annotations

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

_END_B = b"\xc0"


def encode(payload: bytes) -> bytes:
    """Return ``payload`` as one SLIP frame (leading and trailing ``C0``)."""
    body = bytes(payload).replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return _END_B + body + _END_B


def decode_body(raw: bytes) -> bytes | None:
    """Unescape the bytes between two ``C0``; ``None`` if an escape is invalid (lone or unknown ``DB``)."""
    escapes = raw.count(b"\xdb")
    if escapes and escapes != raw.count(b"\xdb\xdc") + raw.count(b"\xdb\xdd"):
        return None
    # DC first: "DB DD DC" must decode to "DB DC", and DB DC never arises from replacing DB DD first.
    return raw.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb") if escapes else raw


class SlipDecoder:
    """Stream decoder: ``feed(chunk)`` returns the complete frames it finished.

    Bytes before the first ``C0`` are line noise (a real UART sees some after reset) and are dropped.
    A ``C0`` both ends one frame and may start the next, so ``C0 a C0 C0 b C0`` and ``C0 a C0 b C0``
    both give two frames. Frames with an invalid escape are counted in ``bad_frames`` and dropped,
    like the ROM does.
    """

    def __init__(self) -> None:
        self._raw = bytearray()
        self._in_frame = False
        self.bad_frames = 0

    def reset(self) -> None:
        """Forget any partial frame (the chip was reset)."""
        self._raw.clear()
        self._in_frame = False

    @property
    def pending(self) -> int:
        """Number of raw bytes of the unfinished frame."""
        return len(self._raw)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Consume ``chunk``; return the frames it completed, in order."""
        frames: list[bytes] = []
        parts = bytes(chunk).split(_END_B)
        for index, part in enumerate(parts):
            if self._in_frame:
                self._raw += part
            is_last = index == len(parts) - 1
            if is_last:
                break
            # a C0 follows this part
            if self._in_frame and self._raw:
                body = decode_body(bytes(self._raw))
                if body is None:
                    self.bad_frames += 1
                else:
                    frames.append(body)
            self._raw.clear()
            self._in_frame = True
        return frames
