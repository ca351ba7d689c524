"""Errors raised by console waits. Each message names the board, what was awaited, for how long,
and carries the console tail so a failing test shows what the device actually said."""

from __future__ import annotations

from collections.abc import Sequence


class ConsoleError(Exception):
    """Base class of console failures."""


def _format_tail(tail: Sequence[str]) -> str:
    if not tail:
        return "  (no console output)"
    return "\n".join(f"  | {line}" for line in tail)


class ExpectTimeout(ConsoleError, AssertionError):
    """Nothing matched within the timeout."""

    def __init__(self, board: str, what: str, timeout: float, tail: Sequence[str]) -> None:
        self.board, self.what, self.timeout, self.tail = board, what, timeout, list(tail)
        super().__init__(
            f"{board}: no {what} within {timeout:.1f} s; last {len(self.tail)} console lines:\n"
            f"{_format_tail(self.tail)}"
        )


class DeviceCrashed(ConsoleError, AssertionError):
    """The device crashed or rebooted unexpectedly while a test waited on it."""

    def __init__(self, board: str, what: str, line: str, reason: str, tail: Sequence[str]) -> None:
        self.board, self.what, self.line, self.reason, self.tail = board, what, line, reason, list(tail)
        super().__init__(
            f"{board}: {reason} while waiting for {what}: {line!r}; last {len(self.tail)} console lines:\n"
            f"{_format_tail(self.tail)}"
        )


class UnexpectedOutput(ConsoleError, AssertionError):
    """A line that must not appear did appear."""

    def __init__(self, board: str, what: str, line: str, tail: Sequence[str]) -> None:
        self.board, self.what, self.line, self.tail = board, what, line, list(tail)
        super().__init__(
            f"{board}: unexpected {what}: {line!r}; last {len(self.tail)} console lines:\n{_format_tail(self.tail)}"
        )


class ConsoleClosed(ConsoleError):
    """The port went away (closed, disconnected) while reading or waiting."""


class ConsoleLost(ConsoleClosed):
    """The board's serial port went away and did not come back within the reconnect bound."""

    def __init__(self, board: str, port: str, reason: str, waited: float, last_error: str) -> None:
        self.board, self.port, self.reason, self.waited, self.last_error = board, port, reason, waited, last_error
        super().__init__(board, port, reason, waited, last_error)

    def __str__(self) -> str:
        if self.port.startswith(("rfc2217://", "socket://")):
            check = "that the serial server (ser2net, esptool's RFC2217 server, `hil sim`) runs and is reachable"
        else:
            check = (
                "the USB cable and hub, that the board is powered, and that the stable path still names it "
                "(`ls -l /dev/serial/by-id/`; a /dev/ttyUSB*/ttyACM* name changes on re-enumeration)"
            )
        return (
            f"board {self.board}: serial port {self.port} was lost ({self.reason}) and did not come back "
            f"within {self.waited:.1f} s (last attempt: {self.last_error}); check {check}"
        )
