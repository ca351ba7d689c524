"""Board: one open board — serial port, console, reset, power, flashing.

The harness never knows whether a board is real: a Board is built from a BoardSpec (port URL and
capabilities) and drivers bound to protocols. ``open()`` does the I/O; the constructor does none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property

from hil.board.drivers import CheckpointPowerDriver, CommandPowerDriver, PowerDriver, ResetDriver, SerialLinesReset
from hil.board.reset import PULSE_KINDS, EsptoolReset, NoLinesReset, ResetPlan, ResetUnavailable, resolve_reset
from hil.board.spec import BoardSpec
from hil.board.timing import TimingProfile, board_timing
from hil.board.transport import open_port
from hil.board.trigger import Trigger
from hil.console import Console, FirmwareProfile
from hil.flashing import (
    ExpectedIdentity,
    FlashRegion,
    FlashReport,
    LoaderEntry,
    PlannedRegion,
    Restart,
    erase_port,
    flash_port,
    verify_port,
)
from hil.flashing.flasher import read_port
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
        trigger: Trigger | None = None,
    ) -> None:
        self.spec = spec
        self.trigger = trigger or Trigger()  # console commands, or the firmware's own timers
        self._profile = profile
        self._power = power
        if self._power is None and spec.power_command:
            self._power = CommandPowerDriver(spec.name, spec.power_command)
        self._reset_driver_factory = reset_driver
        self._reset_plan: ResetPlan | None = None  # resolved on first use (a USB VID:PID lookup is I/O)
        # None: the board's own (BoardSpec.flash_baud); 0: stay at the ROM's baud rate
        self.flash_baud = spec.flash_baud if flash_baud is None else flash_baud
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
        # a lost port (USB drop, re-enumeration) is reopened by its stable name: by-id path or URL
        self._console = Console(
            self._port, self.spec.name, self._profile, reopen=lambda: open_port(self.spec.port, self.spec.baud)
        )
        self._console.start()
        return self

    def close(self) -> None:
        """Stop the console and close the port."""
        if self._console is not None:
            self._console.close()
            self._port = self._console.port  # the console may have replaced a lost port
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
        """The open serial port (for tools; prefer console/flash); a lost one is waited for."""
        if self._port is None:
            raise BoardError(f"board {self.name} ({self.spec.port}) is not open: call open() first")
        return self._console.connected_port() if self._console is not None else self._port

    @property
    def power(self) -> PowerDriver | None:
        """The power driver, or None when the board's power cannot be switched."""
        return self._power

    @cached_property
    def timing(self) -> TimingProfile:
        """How long this board may take per phase (its inventory ``timing``, by chip by default);
        resolved once: every wait of a scenario asks for it."""
        return board_timing(self.spec)

    @property
    def reset_plan(self) -> ResetPlan:
        """The board's ``reset`` resolved (``auto`` from its port's USB VID:PID or URL scheme)."""
        if self._reset_plan is None:
            try:
                self._reset_plan = resolve_reset(self.spec)
            except ValueError as exc:
                raise BoardError(str(exc)) from None
        return self._reset_plan

    @property
    def sees_power_on_boot(self) -> bool:
        """False when the console is the chip's own USB-Serial/JTAG: the port re-enumerates at power-on,
        so what the ROM and the bootloader print before the host has reopened it is lost (a reset
        through the CDC control lines keeps the link, and its boot output is seen)."""
        return self.reset_plan.kind != "usb-jtag"

    @property
    def _own_pulse(self) -> bool:
        """Known reset timing (a driver given, or ``reset_pulse`` declared for the DTR/RTS circuit): the
        harness drives the lines itself, without esptool's fixed 100 + 50 ms waits."""
        declared = self.spec.reset_pulse is not None and self.reset_plan.kind in PULSE_KINDS
        return self._reset_driver_factory is not None or declared

    def _lines(self, port: SerialPort) -> ResetDriver:
        """The reset driver for the board's lines on ``port`` (see hil.board.reset)."""
        if self._reset_driver_factory is not None:
            return self._reset_driver_factory(port)
        plan = self.reset_plan
        if not plan.wired:
            return NoLinesReset(self.name, self.spec.port)
        if self._own_pulse and self.spec.reset_pulse is not None:
            return SerialLinesReset(port, reset_pulse=self.spec.reset_pulse)
        return EsptoolReset(port, plan)

    def _announce_reset(self) -> None:
        self.console.skip()
        self.console.expect_reset()

    def reset(self) -> None:
        """Hard reset (EN pulse) into the application; the console expects the ROM banner, and
        later expects look only at output from after the reset. BoardError when the board's
        lines are not wired (``reset = "none"``)."""
        driver = self._lines(self.port)
        if isinstance(driver, NoLinesReset):
            try:
                driver.hard_reset()
            except ResetUnavailable as exc:
                raise BoardError(str(exc)) from None
        self._announce_reset()
        driver.hard_reset()

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

    def _loader_entry(self, port: SerialPort) -> LoaderEntry:
        """How a flash session takes the board into the ROM loader: the board's own driver and/or
        esptool's sequences (``auto`` keeps esptool's as a fallback; ``none``: already there)."""
        if not self.reset_plan.wired:
            return LoaderEntry(None, "no-reset")
        fallback = "default-reset" if self.spec.reset == "auto" else None
        if self.reset_plan.esptool_chooses and not self._own_pulse:
            return LoaderEntry(None, "default-reset")  # esptool's own choice, with its retry delays
        return LoaderEntry(self._lines(port).enter_download, fallback)

    def _restart(self, port: SerialPort, reset: bool) -> Restart | None:
        """The reset into the app at the end of a flash session (None: leave the chip in the loader)."""
        if not reset or not self.reset_plan.wired:
            return None
        return Restart(self._announce_reset, self._lines(port).hard_reset if self._own_pulse else None)

    def _with_loader(self, run: Callable[[SerialPort, Restart | None], FlashReport], reset: bool) -> FlashReport:
        console = self.console
        report: FlashReport | None = None
        try:
            with console.pause() as port:
                try:
                    report = run(port, self._restart(port, reset))
                finally:
                    if not port.is_open:  # esptool closes the port on failures and timeouts
                        port.open()
                    port.baudrate = self.spec.baud
        finally:
            if reset and self.reset_plan.wired and (report is None or not report.restarted):
                self.reset()  # the session failed: out of the loader with the board's lines
        assert report is not None  # run() returned: the finally above did not re-raise
        if reset and not self.reset_plan.wired:
            raise BoardError(
                f"board {self.name} ({self.spec.port}): {report.bytes_written} B written, but it has "
                "reset = 'none', so the harness cannot start the new firmware: press EN/RST, or pass "
                "reset=False (hil flash --no-reset) and reset it yourself"
            )
        return report

    def _expected(self, images_chip: str | None, images_source: str) -> ExpectedIdentity:
        return ExpectedIdentity(images_chip, images_source, self.spec.chip, self.spec.mac)

    def flash(
        self,
        plan: Sequence[PlannedRegion],
        *,
        force: bool = False,
        reset: bool = True,
        progress: ProgressFn | None = None,
        images_chip: str | None = None,
        images_source: str = "the firmware index",
    ) -> FlashReport:
        """Write the regions whose flash MD5 differs (all with ``force``), then reset into the app
        with esptool's hard reset for the detected chip. Before any write the detected chip is
        checked against ``images_chip`` (the index the images come from, ``images_source``) and the
        inventory's ``chip``/``mac``: :class:`~hil.flashing.IdentityMismatch` and nothing written."""
        return self._with_loader(
            lambda port, restart: flash_port(
                port,
                plan,
                board=self.name,
                flash_baud=self.flash_baud or None,
                progress=progress,
                force=force,
                entry=self._loader_entry(port),
                expect=self._expected(images_chip, images_source),
                restart=restart,
            ),
            reset,
        )

    def flash_matches(self, regions: Sequence[FlashRegion]) -> list[bool]:
        """Whether the flash holds each region's bytes (flash MD5 over the ROM loader, one session,
        nothing written), then reset into the app as :meth:`flash` does: what an invariant reads
        after a scenario (the slots hold the images they must)."""
        report = self._with_loader(
            lambda port, restart: verify_port(
                port,
                regions,
                board=self.name,
                entry=self._loader_entry(port),
                expect=self._expected(None, ""),
                restart=restart,
            ),
            reset=True,
        )
        return [r.action == "identical" for r in report.regions]

    def read_flash(self, offset: int, size: int) -> bytes:
        """Read ``size`` bytes of flash at ``offset`` (esptool read_flash: e.g. the NVS partition that
        provisioning merges into). The chip is left in the loader: the next flash resets it."""
        with self.console.pause() as port:
            try:
                return read_port(
                    port,
                    offset,
                    size,
                    board=self.name,
                    flash_baud=self.flash_baud or None,
                    entry=self._loader_entry(port),
                    expect=self._expected(None, ""),
                )
            finally:
                if not port.is_open:  # esptool closes the port on failures and timeouts
                    port.open()
                port.baudrate = self.spec.baud

    def erase_region(self, offset: int, size: int, *, reset: bool = True) -> FlashReport:
        """Erase ``size`` bytes at ``offset`` (4 KiB aligned), e.g. the bootloader, then reset."""
        return self._with_loader(
            lambda port, restart: erase_port(
                port,
                offset,
                size,
                board=self.name,
                entry=self._loader_entry(port),
                expect=self._expected(None, ""),
                restart=restart,
            ),
            reset,
        )
