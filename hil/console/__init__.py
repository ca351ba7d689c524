"""hil.console: a board's serial console — reader thread, per-test logs, expect / expect_event,
firmware profiles (named events as regexes) and crash / unexpected-reboot detection."""

from hil.console.console import DEFAULT_TIMEOUT, TAIL_LINES, Console
from hil.console.errors import ConsoleClosed, ConsoleError, DeviceCrashed, ExpectTimeout, UnexpectedOutput
from hil.console.lines import LineKind, LogLine, strip_ansi
from hil.console.profile import (
    DEFAULT_PROFILE,
    FirmwareProfile,
    ProfileError,
    UnknownEventError,
    builtin_profiles,
    load_profile,
)

__all__ = [
    "DEFAULT_PROFILE",
    "DEFAULT_TIMEOUT",
    "TAIL_LINES",
    "Console",
    "ConsoleClosed",
    "ConsoleError",
    "DeviceCrashed",
    "ExpectTimeout",
    "FirmwareProfile",
    "LineKind",
    "LogLine",
    "ProfileError",
    "UnexpectedOutput",
    "UnknownEventError",
    "builtin_profiles",
    "load_profile",
    "strip_ansi",
]
