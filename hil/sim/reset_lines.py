"""The classic USB-UART auto-reset circuit: DTR/RTS drive EN and IO0 through two transistors.

EN is low while ``RTS and not DTR``; IO0 is low while ``DTR and not RTS`` (True = asserted). The
chip samples IO0 when EN rises, but esptool's classic sequence passes through DTR=RTS=1 at the rise
and only pulls IO0 low a moment later, so IO0 going low within a short window after the rise still
selects download mode (``sample_boot_mode``). IO0 can only be pulled low through DTR, so when DTR
is not asserted at the rise (a hard reset, a power-on) the strapping is settled at once and the
chip boots without waiting out the window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_STRAP_WINDOW = 0.2  # seconds after EN rises during which IO0 low still means download


class ResetLines:
    """DTR/RTS state and the EN/IO0 it produces; calls back on EN edges (outside its lock)."""

    def __init__(self, on_en_fall: Callable[[], None], on_en_rise: Callable[[], None]) -> None:
        self._on_en_fall = on_en_fall
        self._on_en_rise = on_en_rise
        self._cond = threading.Condition()
        self._dtr = False
        self._rts = False
        self._io0_low_seen = False  # IO0 was low at or after the last EN rise
        self._en_generation = 0  # counts EN rises, to notice a reset during the strap window
        self._dtr_at_rise = False  # DTR asserted when EN last rose: IO0 may still go low

    @staticmethod
    def en_for(dtr: bool, rts: bool) -> bool:
        """EN level (True = high, chip running) for the given line states."""
        return not (rts and not dtr)

    @staticmethod
    def io0_low_for(dtr: bool, rts: bool) -> bool:
        """True if IO0 is pulled low for the given line states."""
        return dtr and not rts

    @property
    def dtr(self) -> bool:
        return self._dtr

    @property
    def rts(self) -> bool:
        return self._rts

    @property
    def en_high(self) -> bool:
        with self._cond:
            return self.en_for(self._dtr, self._rts)

    @property
    def io0_low(self) -> bool:
        with self._cond:
            return self.io0_low_for(self._dtr, self._rts)

    def set(self, dtr: bool | None = None, rts: bool | None = None) -> None:
        """Change one or both lines (``None`` keeps a line); fires EN edge callbacks in order."""
        with self._cond:
            en_before = self.en_for(self._dtr, self._rts)
            if dtr is not None:
                self._dtr = bool(dtr)
            if rts is not None:
                self._rts = bool(rts)
            en_after = self.en_for(self._dtr, self._rts)
            io0_low = self.io0_low_for(self._dtr, self._rts)
            if en_after and not en_before:
                self._en_generation += 1
                self._io0_low_seen = io0_low
                self._dtr_at_rise = self._dtr
            elif io0_low:
                self._io0_low_seen = True
            self._cond.notify_all()
        if en_before and not en_after:
            self._on_en_fall()
        elif en_after and not en_before:
            self._on_en_rise()

    def release(self) -> None:
        """The host closed the port: both lines deasserted (no reset unless EN was held low)."""
        self.set(dtr=False, rts=False)

    def sample_boot_mode(self, window: float, stopped: Callable[[], bool]) -> bool:
        """Strapping at EN rise: True (download) if IO0 is or goes low within ``window`` seconds.

        Returns early (False) when ``stopped()`` turns true; the caller checks that itself.
        """
        deadline = time.monotonic() + window
        with self._cond:
            if not (self._io0_low_seen or self._dtr_at_rise):
                return False  # IO0 needs DTR to go low: nothing can change the strapping now
            generation = self._en_generation
            while not (self._io0_low_seen or stopped() or self._en_generation != generation):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._io0_low_seen and self._en_generation == generation

    def wake(self) -> None:
        """Wake a ``sample_boot_mode`` waiter so it re-checks ``stopped``."""
        with self._cond:
            self._cond.notify_all()
