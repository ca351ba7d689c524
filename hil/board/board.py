"""Board: one open board — serial port, console, reset, power, flashing.

The harness never knows whether a board is real: a Board is built from a BoardSpec (port URL and
capabilities) and drivers bound to protocols. ``open()`` does the I/O; the constructor does none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from hil.board.drivers import CheckpointPowerDriver, CommandPowerDriver, PowerDriver, ResetDriver, SerialLinesReset
from hil.board.spec import DEFAULT_RESET_PULSE, BoardSpec
from hil.board.transport import open_port
from hil.console import Console, FirmwareProfile
from hil.flashing import FlashRegion, FlashReport, erase_port, flash_port
from hil.flashing.session import ProgressFn
from hil.serial_port import SerialPort


class BoardError(RuntimeError):
    """A board operation that cannot be done in the board's current state or configuration."""


ARMED_CUT_WINDOW = 60.0  # s during which the reboot caused by an armed power cut is expected


class ArmedPowerCut:
    """A power cut armed at a firmware checkpoint: ``wait()`` until it happened."""

    def __init__(self, board: str, driver: CheckpointPowerDriver, checkpoint: str, expected: int) -> None:
        self.board, self.checkpoint = board, checkpoint
        self._driver, self._expected = driver, expected

    def wait(self, timeout: float = 10.0) -> None:
        """Block until the cut happened; AssertionError if the firmware never reached the checkpoint."""
        if not self._driver.wait_cut(self._expected, timeout):
            self._driver.disarm()
            raise AssertionError(
                f"board {self.board}: the firmware did not reach checkpoint {self.checkpoint!r} "
                f"within {timeout:.0f} s (power was not cut)"
            )


class Board:
    """A board of the inventory, opened for use. Use as a context manager or open()/close()."""

    def __init__(
        self,
        spec: BoardSpec,
        *,
        profile: FirmwareProfile | None = None,
        power: PowerDriver | None = None,
        reset_driver: Callable[[SerialPort], ResetDriver] | None = None,
        flash_baud: int | None = None,
    ) -> None:
        self.spec = spec
        self._profile = profile
        self._power = power
        if self._power is None and spec.power_command:
            self._power = CommandPowerDriver(spec.name, spec.power_command)
        pulse = DEFAULT_RESET_PULSE if spec.reset_pulse is None else spec.reset_pulse
        self._reset_driver_factory = reset_driver or partial(SerialLinesReset, reset_pulse=pulse)
        # Known reset timing (declared, or a driver given): the harness also takes the board into the
        # ROM loader itself, instead of esptool's sequences with their fixed 100 + 50 ms.
        self._own_loader_entry = reset_driver is not None or spec.reset_pulse is not None
        self.flash_baud = flash_baud
        self._port: SerialPort | None = None
        self._console: Console | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def open(self) -> Board:
        """Open the serial port and start the console reader."""
        if self._port is not None:
            return self
        self._port = open_port(self.spec.port, self.spec.baud)
        self._console = Console(self._port, self.spec.name, self._profile)
        self._console.start()
        return self

    def close(self) -> None:
        """Stop the console and close the port."""
        if self._console is not None:
            self._console.close()
            self._console = None
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> Board:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Board({self.spec.name!r}, {self.spec.port!r}, open={self._port is not None})"

    @property
    def console(self) -> Console:
        """The board's console (open() first)."""
        if self._console is None:
            raise BoardError(f"board {self.name} ({self.spec.port}) is not open: call open() first")
        return self._console

    @property
    def port(self) -> SerialPort:
        """The open serial port (for tools; prefer console/flash)."""
        if self._port is None:
            raise BoardError(f"board {self.name} ({self.spec.port}) is not open: call open() first")
        return self._port

    @property
    def power(self) -> PowerDriver | None:
        """The power driver, or None when the board's power cannot be switched."""
        return self._power

    def reset(self) -> None:
        """Hard reset (EN pulse) into the application; the console expects the ROM banner, and
        later expects look only at output from after the reset."""
        self.console.skip()
        self.console.expect_reset()
        self._reset_driver_factory(self.port).hard_reset()

    def power_cycle(self) -> None:
        """Cut and restore power; raises BoardError naming the board when it has no power control."""
        if self._power is None:
            raise BoardError(
                f"board {self.name} has no power control: add power_command to its entry in the "
                "boards file, or skip scenarios that need the 'power' capability"
            )
        self.console.expect_reset()
        self._power.cycle()

    def arm_power_cut(self, checkpoint: str, *, restore: bool = True, **fields: object) -> ArmedPowerCut:
        """Cut power when the firmware reaches ``checkpoint`` with ``fields`` (once); with ``restore``
        power comes back at once and the board boots again. Needs the 'power-cut' capability."""
        driver = self._power
        if not isinstance(driver, CheckpointPowerDriver):
            raise BoardError(
                f"board {self.name} cannot cut power at firmware checkpoint {checkpoint!r}: its power "
                "driver has no checkpoint triggers; skip scenarios that need the 'power-cut' capability"
            )
        expected = driver.cut_count() + 1
        driver.cut_when(checkpoint, dict(fields), restore)
        self.console.expect_reset(ARMED_CUT_WINDOW)  # the reboot after the cut is not a crash
        return ArmedPowerCut(self.name, driver, checkpoint, expected)

    def _loader_entry(self, port: SerialPort) -> Callable[[], None] | None:
        """How the harness resets the board into the ROM loader, or None: esptool does it."""
        return self._reset_driver_factory(port).enter_download if self._own_loader_entry else None

    def _with_loader(self, run: Callable[[SerialPort], FlashReport], reset: bool) -> FlashReport:
        console = self.console
        try:
            with console.pause() as port:
                try:
                    return run(port)
                finally:
                    if not port.is_open:  # esptool closes the port on failures and timeouts
                        port.open()
                    port.baudrate = self.spec.baud
        finally:
            if reset:
                self.reset()

    def flash(
        self,
        plan: Sequence[FlashRegion],
        *,
        force: bool = False,
        reset: bool = True,
        progress: ProgressFn | None = None,
    ) -> FlashReport:
        """Write the regions whose flash MD5 differs (all with ``force``), then reset into the app."""
        return self._with_loader(
            lambda port: flash_port(
                port,
                plan,
                board=self.name,
                flash_baud=self.flash_baud,
                progress=progress,
                force=force,
                enter_loader=self._loader_entry(port),
            ),
            reset,
        )

    def erase_region(self, offset: int, size: int, *, reset: bool = True) -> FlashReport:
        """Erase ``size`` bytes at ``offset`` (4 KiB aligned), e.g. the bootloader, then reset."""
        return self._with_loader(
            lambda port: erase_port(port, offset, size, board=self.name, enter_loader=self._loader_entry(port)), reset
        )
