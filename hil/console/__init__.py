"""hil.console: a board's serial console — reader thread, per-test logs, expect / expect_event,
firmware profiles (named events as regexes) and crash / unexpected-reboot detection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hil.lazy import lazy_exports

if TYPE_CHECKING:
    from hil.console.console import DEFAULT_TIMEOUT, TAIL_LINES, Console
    from hil.console.errors import (
        ConsoleClosed,
        ConsoleError,
        ConsoleLost,
        DeviceCrashed,
        ExpectTimeout,
        UnexpectedOutput,
    )
    from hil.console.lines import LineKind, LogLine, strip_ansi
    from hil.console.profile import (
        DEFAULT_PROFILE,
        FirmwareProfile,
        ProfileError,
        UnknownEventError,
        builtin_profiles,
        load_profile,
    )
    from hil.console.reconnect import PortGap, ReconnectPolicy

# imported on first use: the pytest plugin reads hil.console.profile in every run (not the console)
__getattr__ = lazy_exports(
    __name__,
    {
        "DEFAULT_TIMEOUT": "hil.console.console",
        "TAIL_LINES": "hil.console.console",
        "Console": "hil.console.console",
        "ConsoleClosed": "hil.console.errors",
        "ConsoleError": "hil.console.errors",
        "ConsoleLost": "hil.console.errors",
        "PortGap": "hil.console.reconnect",
        "ReconnectPolicy": "hil.console.reconnect",
        "DeviceCrashed": "hil.console.errors",
        "ExpectTimeout": "hil.console.errors",
        "UnexpectedOutput": "hil.console.errors",
        "LineKind": "hil.console.lines",
        "LogLine": "hil.console.lines",
        "strip_ansi": "hil.console.lines",
        "DEFAULT_PROFILE": "hil.console.profile",
        "FirmwareProfile": "hil.console.profile",
        "ProfileError": "hil.console.profile",
        "UnknownEventError": "hil.console.profile",
        "builtin_profiles": "hil.console.profile",
        "load_profile": "hil.console.profile",
    },
)

__all__ = [
    "DEFAULT_PROFILE",
    "DEFAULT_TIMEOUT",
    "TAIL_LINES",
    "Console",
    "ConsoleClosed",
    "ConsoleError",
    "ConsoleLost",
    "DeviceCrashed",
    "ExpectTimeout",
    "FirmwareProfile",
    "LineKind",
    "LogLine",
    "PortGap",
    "ProfileError",
    "ReconnectPolicy",
    "UnexpectedOutput",
    "UnknownEventError",
    "builtin_profiles",
    "load_profile",
    "strip_ansi",
]
