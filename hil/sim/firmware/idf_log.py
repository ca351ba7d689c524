"""ESP-IDF log lines: ``I (1234) tag: message`` with the colours IDF 5.3 prints on E/W/I."""

from __future__ import annotations

from hil.sim.runtime import Runtime

_COLOURS = {"E": "\033[0;31m", "W": "\033[0;33m", "I": "\033[0;32m"}
_RESET = "\033[0m"


class IdfLog:
    """Writes ESP-IDF formatted lines on the runtime's UART, timestamped with ``rt.millis()``."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def line(self, level: str, tag: str, msg: str) -> None:
        """One log line at ``level`` (E, W, I, D, V)."""
        text = f"{level} ({self._rt.millis()}) {tag}: {msg}"
        colour = _COLOURS.get(level)
        self._rt.write_line(f"{colour}{text}{_RESET}" if colour else text)

    def i(self, tag: str, msg: str) -> None:
        self.line("I", tag, msg)

    def w(self, tag: str, msg: str) -> None:
        self.line("W", tag, msg)

    def e(self, tag: str, msg: str) -> None:
        self.line("E", tag, msg)

    def raw(self, text: str) -> None:
        """A line without IDF framing (printf output of console commands, panic handler)."""
        self._rt.write_line(text)
