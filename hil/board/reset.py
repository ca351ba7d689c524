"""Reset as data: a board's ``reset`` (inventory) resolved to one of esptool's own reset strategies.

``reset`` is ``"auto"``, ``"classic"``, ``"unix-tight"``, ``"usb-jtag"``, ``"none"`` or a custom
sequence in esptool's ``custom_reset_sequence`` syntax (``"D0|R1|W0.1|D1|R0|W0.05|D0"``). The
sequences are esptool's (``esptool.reset``: ClassicReset, UnixTightReset, USBJTAGSerialReset,
CustomReset, HardReset), called here, never re-implemented.

``auto`` follows esptool: the ESP USB-Serial/JTAG (303a:1001) takes the USB-JTAG sequence, a UART
bridge esptool's own choice for this OS (unix-tight, then classic, with its longer-delay retries),
``rfc2217://`` the classic one (the server times the lines). ``socket://`` carries no lines at all
(esptool itself turns resets off there), so ``auto`` is ``none`` on it. ``none`` never touches the
lines: the chip must already wait in the ROM loader when flashing starts, and a reset is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hil.board.spec import RESET_KINDS, BoardSpec
from hil.serial_port import SerialPort

CUSTOM = "custom"
PULSE_KINDS = ("classic", "unix-tight")  # the DTR/RTS auto-reset circuit, where a declared EN pulse applies
VidPid = tuple[int, int]
# esptool's (esp_pylib.constants), as numbers: the inventory is read at plugin start, before esptool
# may be imported (checked against esp_pylib by selftest/board/test_reset.py)
USB_JTAG_SERIAL_PID = 0x1001
HARDWARE_FLOW_CONTROL_VID_PIDS: tuple[VidPid, ...] = ((0x10C4, 0xEA64),)  # CP2102C


class ResetUnavailable(RuntimeError):
    """The board's reset lines are not wired (``reset = "none"``): the harness cannot reset it."""


def check_reset(value: str) -> str | None:
    """None if ``value`` is a reset kind or a custom sequence esptool accepts, else why not."""
    if value in RESET_KINDS:
        return None
    from esp_pylib.serial_reset import parse_custom_reset_sequence  # esptool's; heavy: only for custom ones

    try:
        steps = parse_custom_reset_sequence(value)  # esptool's own parser (CustomReset uses it)
    except ValueError as exc:
        return f"{value!r} is neither one of {list(RESET_KINDS)} nor a custom reset sequence: {exc}"
    if not steps:
        return f"{value!r} is an empty custom reset sequence; use one of {list(RESET_KINDS)} or e.g. 'D0|R1|W0.1|R0'"
    return None


def port_vid_pid(port: str) -> VidPid | None:
    """The USB VID:PID of a local serial device (esptool's own lookup), None for URLs or when unknown."""
    if "://" in port:
        return None
    from esp_pylib.errors import PortVidPidNotFoundError
    from esp_pylib.serial_ports import get_port_vid_pid

    try:
        vid, pid = get_port_vid_pid(port)
    except PortVidPidNotFoundError:
        return None
    return None if vid is None or pid is None else (vid, pid)


@dataclass(frozen=True)
class ResetPlan:
    """A board's reset, resolved: ``kind`` (classic | unix-tight | usb-jtag | none | custom), the
    custom ``sequence``, whether the bridge has always-on flow control (CP2102C: esptool's
    ``flow_control`` variants), ``esptool_chooses`` (``auto`` on a UART bridge: esptool's own
    sequence list enters the loader) and ``why`` (for messages and the report)."""

    kind: str
    why: str
    sequence: str = ""
    flow_control: bool = False
    esptool_chooses: bool = False

    @property
    def wired(self) -> bool:
        """False for ``none``: the harness never toggles the lines."""
        return self.kind != "none"


def resolve_reset(spec: BoardSpec, vid_pid: Callable[[str], VidPid | None] = port_vid_pid) -> ResetPlan:
    """Resolve ``spec.reset`` for ``spec.port`` (``vid_pid`` looks the USB bridge up: I/O)."""
    scheme = spec.port.split("://", 1)[0].lower() if "://" in spec.port else ""
    ids = None if scheme else vid_pid(spec.port)
    flow_control = ids in HARDWARE_FLOW_CONTROL_VID_PIDS
    where = f"{ids[0]:04x}:{ids[1]:04x}" if ids else (scheme or "local port")
    if spec.reset not in RESET_KINDS:
        return ResetPlan(CUSTOM, "custom sequence (boards file)", spec.reset, flow_control)
    if spec.reset != "auto":
        if spec.reset == "unix-tight" and scheme:
            raise ValueError(
                f"board {spec.name}: reset = 'unix-tight' needs a local serial device (it sets DTR and RTS "
                f"in one ioctl), not {spec.port}; use reset = 'classic' over {scheme}://"
            )
        return ResetPlan(spec.reset, "boards file", flow_control=flow_control)
    if scheme == "socket":
        return ResetPlan("none", "auto: socket:// carries no DTR/RTS")
    if scheme:
        return ResetPlan("classic", f"auto: {scheme}:// (the server drives the lines)")
    if ids is not None and ids[1] == USB_JTAG_SERIAL_PID:
        return ResetPlan("usb-jtag", f"auto: {where} is the ESP USB-Serial/JTAG")
    kind = "classic" if os.name == "nt" else "unix-tight"
    return ResetPlan(kind, f"auto: UART bridge {where}, esptool's sequences", "", flow_control, esptool_chooses=True)


def _esptool_reset() -> Any:
    """``esptool.reset``, imported under the harness's esptool rules (hil.flashing.esptool_host)."""
    from hil.flashing.esptool_host import esptool_module

    return esptool_module().reset


class EsptoolReset:
    """A :class:`~hil.board.drivers.ResetDriver` that runs esptool's reset classes on an open port."""

    def __init__(self, port: SerialPort, plan: ResetPlan) -> None:
        self._port = port
        self.plan = plan

    def _strategy(self) -> Any:
        reset = _esptool_reset()
        port, plan = self._port, self.plan
        if plan.kind == CUSTOM:
            return reset.CustomReset(port, plan.sequence)
        if plan.kind == "usb-jtag":
            return reset.USBJTAGSerialReset(port)
        cls = reset.UnixTightReset if plan.kind == "unix-tight" else reset.ClassicReset
        return cls(port, reset.DEFAULT_RESET_DELAY, plan.flow_control)

    def enter_download(self) -> None:
        """esptool's bootloader sequence for the plan's kind (EN pulsed with IO0 low)."""
        self._strategy()()

    def hard_reset(self) -> None:
        """esptool's hard reset (EN pulse; the USB variant waits for re-enumeration)."""
        reset = _esptool_reset()
        reset.HardReset(self._port, uses_usb=self.plan.kind == "usb-jtag", flow_control=self.plan.flow_control)()


class NoLinesReset:
    """``reset = "none"``: every reset is refused with what to do instead."""

    def __init__(self, board: str, port: str) -> None:
        self._board, self._port = board, port

    def _refuse(self, what: str) -> ResetUnavailable:
        return ResetUnavailable(
            f"board {self._board} ({self._port}) has reset = 'none' in the boards file: the harness does not "
            f"toggle DTR/RTS, so it cannot {what}. Press EN/RST yourself (hold BOOT too for the ROM loader), "
            "or wire the auto-reset circuit and set reset = 'auto'"
        )

    def hard_reset(self) -> None:
        """Refused: raises :class:`ResetUnavailable`."""
        raise self._refuse("reset it into its application")

    def enter_download(self) -> None:
        """Refused: raises :class:`ResetUnavailable`."""
        raise self._refuse("reset it into the ROM loader")
