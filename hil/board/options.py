"""The board area's harness options, as data. The plugin registers each as ``--hil-<name>`` and
ini key ``hil_<name>`` (see ``hil.options``)."""

from __future__ import annotations

from hil.board.lock import DEFAULT_LOCK_TIMEOUT
from hil.console.profile import DEFAULT_PROFILE
from hil.options import OptionSpec

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "port",
        "serial port of a board: device path or rfc2217://host:port, optionally NAME=URL "
        "(repeatable); without --hil-port/--hil-boards, USB boards are detected, else "
        "virtual boards are started",
        action="append",
        metavar="URL",
    ),
    OptionSpec("boards", "boards file (TOML, [[board]] name/port/chip/capabilities/power_command...)", metavar="FILE"),
    OptionSpec("lock-dir", "directory of the cross-process board locks (default: <tmp>/hil-locks)", metavar="DIR"),
    OptionSpec(
        "lock-timeout",
        "seconds to wait for a board another process holds",
        default=DEFAULT_LOCK_TIMEOUT,
        type=float,
        metavar="S",
    ),
    OptionSpec(
        "device-trigger",
        "how the firmware is made to upload and check for updates: console (its bench commands), timer "
        "(wait for its own timers; the wire profile's [device] periods), auto (console on virtual boards, "
        "the wire profile's trigger on real ones)",
        default="auto",
        metavar="auto|console|timer",
    ),
    OptionSpec(
        "firmware-profile",
        "firmware profile mapping event names to log regexes (built-in name or a .toml path)",
        default=DEFAULT_PROFILE,
        metavar="NAME",
    ),
    OptionSpec(
        "flash-baud",
        "baud rate esptool switches to for flashing, for every board (default: each board's flash_baud, "
        "921600 unless its boards-file entry says otherwise; 0: stay at the ROM's 115200)",
        default=None,
        type=int,
        metavar="BAUD",
    ),
    OptionSpec(
        "reflash", "write every region even when its flash MD5 already matches", default=False, action="store_true"
    ),
    OptionSpec(
        "power-cut-sweep",
        "power-cut sweeps cut at a spread sample of the points of an update "
        "(sample) or at every point, every chunk included (all)",
        default="sample",
        metavar="MODE",
    ),
    OptionSpec(
        "power-cut-samples", "how many points a sampled power-cut sweep takes", default=6, type=int, metavar="N"
    ),
)
