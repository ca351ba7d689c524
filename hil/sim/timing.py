"""How long the virtual chip takes for the work a real one spends time on (device time, ``Runtime.wait``).

``instant`` (the default) does everything at once: the scenario suite stays fast. ``bench`` gives the
boot path a real ESP32's order of magnitude (ROM loading the bootloader, MCUboot hashing the image,
IDF start-up before ``app_main``), so output arrives over time as on a bench: after a USB-JTAG port
re-enumerates, for one (a real board's first boot lines are lost there, its app lines are not).
Figures are typical values of an ESP32 at 240 MHz with 40 MHz DIO flash; see
``hil.board.timing`` for the bounds the harness derives from the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class SimTiming:
    """Device time of the boot path's steps (seconds; bytes/s for hashing, 0 = no time)."""

    name: str = "instant"
    rom_boot: float = 0.0  # reset banner to the bootloader's first line: the ROM loads the second stage
    hash_rate: float = 0.0  # MCUboot's SHA-256 over the image, per byte (0: instant)
    app_start: float = 0.0  # MCUboot's hand-over to app_main: IDF start-up, NVS init

    def hash_time(self, size: int) -> float:
        """Device time MCUboot spends hashing ``size`` bytes."""
        return size / self.hash_rate if self.hash_rate else 0.0

    def figures(self) -> dict[str, float]:
        """The figures as the harness's timing overrides (``hil.board.timing`` names)."""
        return {
            "rom_boot": self.rom_boot or 0.001,
            "hash_rate": self.hash_rate or 200 * MIB,
            "app_start": self.app_start or 0.001,
        }


TIMINGS: dict[str, SimTiming] = {
    "instant": SimTiming(),
    "bench": SimTiming(name="bench", rom_boot=0.1, hash_rate=5 * MIB, app_start=0.4),
}
