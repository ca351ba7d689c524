"""SerialPort: what the harness uses of an open pyserial port (a leaf module, for annotations).

pyserial's port classes (``serial.Serial``, the ``rfc2217://``, ``socket://`` and ``loop://`` URL
handlers, :class:`hil.board.transport.FastRFC2217Serial`) share ``SerialBase``, but ``SerialBase``
does not declare ``open()`` or ``in_waiting``: each subclass adds them. This Protocol names the
surface the console, the flasher and the board use, so each accepts any of those classes.
"""

from __future__ import annotations

from typing import Protocol


class SerialPort(Protocol):
    """An open (or reopenable) pyserial port."""

    is_open: bool
    port: str | None
    baudrate: int
    timeout: float | None
    dtr: bool
    rts: bool

    @property
    def in_waiting(self) -> int: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def flush(self) -> None: ...

    def read(self, size: int = ..., /) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...
