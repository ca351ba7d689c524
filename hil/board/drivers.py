"""Reset and power drivers. Drivers bind to protocols (what a board can do), not to hardware.

``SerialLinesReset`` drives EN/IO0 through DTR/RTS, the classic USB-UART auto-reset circuit
(EN low <=> RTS and not DTR; IO0 low <=> DTR and not RTS). ``CommandPowerDriver`` runs the
inventory's power command. The virtual board's power switch is adapted to ``PowerDriver`` by the
fixture that starts it.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import time
from typing import Any, Protocol, runtime_checkable

from hil.board.spec import DEFAULT_RESET_PULSE
from hil.serial_port import SerialPort

RESET_PULSE = DEFAULT_RESET_PULSE  # EN held low (esptool uses 100 ms); a board fact (BoardSpec.reset_pulse)
POWER_TIMEOUT = 30.0
POWER_OFF_HOLD = 1.0  # s power stays off when a cycle falls back to off, then on

log = logging.getLogger(__name__)


@runtime_checkable
class ResetDriver(Protocol):
    """Resets a board into its application or into the ROM serial loader."""

    def hard_reset(self) -> None:
        """Pulse EN: the chip boots normally."""

    def enter_download(self) -> None:
        """Reset with IO0 low: the chip waits in the ROM serial loader."""


@runtime_checkable
class PowerDriver(Protocol):
    """Cuts and restores a board's power. Return values are not used (``object``: the virtual
    board's power switch returns its control socket's reply)."""

    def off(self) -> object:
        """Cut power."""

    def on(self) -> object:
        """Restore power."""

    def cycle(self) -> object:
        """Cut and restore power."""


@runtime_checkable
class CheckpointPowerDriver(PowerDriver, Protocol):
    """A power switch that cuts at a named point of the firmware's run (the virtual board's control
    socket: ``upload.nonce_committed``, ``ota.chunk_written``, swap steps, ``nvs.write`` ...)."""

    def cut_when(self, event: str, fields: dict[str, Any] | None = None, restore: bool = False) -> Any:
        """Arm a one-shot cut at checkpoint ``event`` whose fields match ``fields``."""

    def disarm(self) -> Any:
        """Drop every armed cut."""

    def cut_count(self) -> int:
        """Cuts that happened so far."""

    def wait_cut(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``count`` cuts happened in total; False on timeout."""


def _hold(seconds: float) -> None:
    # a pulse width the hardware needs, not synchronisation: nothing to wait on but time
    if seconds > 0:
        time.sleep(seconds)


class SerialLinesReset:
    """DTR/RTS sequences on an open serial port (esptool's HardReset and ClassicReset). ``reset_pulse``
    is the board's EN low time (``BoardSpec.reset_pulse``); IO0 is held low for half of it after EN
    rises, for the ROM to sample it (esptool: 100 ms and 50 ms; both span the RC delay on EN)."""

    def __init__(self, port: SerialPort, reset_pulse: float = RESET_PULSE) -> None:
        self._port = port
        self._reset_pulse = reset_pulse
        self._boot_hold = reset_pulse / 2

    def hard_reset(self) -> None:
        """RTS pulse with DTR released: EN low for ``reset_pulse`` (100 ms), IO0 high, so the app boots."""
        self._port.dtr = False
        self._port.rts = True
        _hold(self._reset_pulse)
        self._port.rts = False

    def enter_download(self) -> None:
        """esptool's classic sequence: EN low, then IO0 low as EN rises, then release both."""
        self._port.dtr = False
        self._port.rts = True
        _hold(self._reset_pulse)
        self._port.dtr = True
        self._port.rts = False
        _hold(self._boot_hold)
        self._port.dtr = False


class PowerCommandError(RuntimeError):
    """The bench's power command failed, timed out or does not support the action.

    ``returncode`` is the command's exit status when it ran and failed, None otherwise."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


class CommandPowerDriver:
    """Runs a board's power command. ``{action}`` in the command is replaced by off, on or cycle;
    a command without it can only cycle power. When ``cycle`` exits non-zero (a relay script that
    knows only off/on), cycling falls back to off, ``off_hold`` seconds, on, from then on."""

    def __init__(
        self, board: str, command: str, timeout: float = POWER_TIMEOUT, off_hold: float = POWER_OFF_HOLD
    ) -> None:
        self.board = board
        self.command = command
        self.timeout = timeout
        self.off_hold = off_hold
        self.cycle_supported: bool | None = None  # None: not tried yet; False: cycle is off, then on

    def _run(self, action: str) -> None:
        if "{action}" not in self.command and action != "cycle":
            raise PowerCommandError(
                f"{self.board}: power command {self.command!r} can only cycle power; put {{action}} in it "
                f"(replaced by off/on/cycle) to support '{action}'"
            )
        argv = shlex.split(self.command.replace("{action}", action))
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PowerCommandError(
                f"{self.board}: power {action} command {shlex.join(argv)!r} did not finish within "
                f"{self.timeout:g} s; check the hub/relay and the command in the boards file"
            ) from None
        except OSError as exc:
            raise PowerCommandError(
                f"{self.board}: cannot run power {action} command {shlex.join(argv)!r}: {exc}; "
                "check the command in the boards file"
            ) from exc
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()[-500:]
            raise PowerCommandError(
                f"{self.board}: power {action} command {shlex.join(argv)!r} exited with {done.returncode}: "
                f"{output or '(no output)'}",
                returncode=done.returncode,
            )

    def off(self) -> None:
        """Cut power."""
        self._run("off")

    def on(self) -> None:
        """Restore power."""
        self._run("on")

    def cycle(self) -> None:
        """Cut and restore power: the ``cycle`` action, or off then on when the command has no
        working ``cycle`` (it exited non-zero; a timeout or a missing program is not retried)."""
        if self.cycle_supported is not False:
            try:
                self._run("cycle")
            except PowerCommandError as exc:
                if exc.returncode is None or "{action}" not in self.command:
                    raise
                log.warning("%s; cycling power as off, then on", exc)
                self.cycle_supported = False
            else:
                self.cycle_supported = True
                return
        self._run("off")
        _hold(self.off_hold)
        self._run("on")
