"""Timing profiles: how long a board may take for each phase, derived from what it is and what it moves.

A bound is ``max(floor, margin * typical)``, where *typical* comes from the chip's figures and the sizes
involved (image, slot, chunk) and *floor* covers fixed costs a loaded runner or a bench adds. Nothing
here waits: scenarios and fixtures pass these bounds to ``expect_event``, which returns as soon as the
event is seen; a larger bound only costs time on a failure.

Figures of real chips (typical values; the margin covers the spread):

* ``rom_boot``: reset to the second-stage bootloader (ROM banner, flash mode set up).
* ``hash_rate``: bytes/s MCUboot hashes an image from flash (SPI flash read at 40 MHz DIO, ~5 MB/s,
  and software SHA-256 on the boot CPU).
* ``verify``: one RSA-2048 PSS signature check in the bootloader.
* ``app_start``: MCUboot's jump to ``app_main`` (IDF start-up, NVS init).
* ``network_up``: Wi-Fi association, WPA2 handshake and DHCP until the board has an address.
* ``sector_erase`` / ``sector_write``: one 4 KiB SPI NOR sector (erase typ. 45 ms, e.g. W25Q32 tSE;
  16 page programs of 0.7 ms). An MCUboot scratch swap erases and writes each sector of the slot
  three times (primary, secondary, scratch).
* ``tls_handshake``: ECDHE + RSA-2048 handshake on the chip with its crypto accelerators (one per OTA
  chunk and per upload attempt: PROTOCOL.md, one connection each).
* ``net_rate``: bytes/s of an HTTPS body over Wi-Fi.

The virtual board has its own profile: its work is near-instant, so its floors (the bounds used so
far, sized for a loaded CI runner) decide, and its scenario suite is not made slower by a real chip's
figures.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from hil.board.spec import BoardSpec
from hil.images.layout import LAYOUTS, layout_for

KIB = 1024
MIB = 1024 * KIB
SECTOR = 4 * KIB
SWAP_PASSES = 3  # scratch swap: each sector is erased and written in primary, secondary and scratch
UPLOAD_ATTEMPTS = 3  # PROTOCOL.md device contract: first try + 2 retries
UPLOAD_RETRY_DELAY = 1.0
CHUNK_ATTEMPTS = 3
CHUNK_RETRY_DELAY = 0.5


class TimingError(ValueError):
    """A timing profile name or override that does not exist or is not a positive number."""


@dataclass(frozen=True)
class TimingProfile:
    """One board's timing figures (seconds, bytes/s) and the bounds derived from them."""

    name: str
    rom_boot: float
    hash_rate: float
    verify: float
    app_start: float
    network_up: float
    sector_erase: float
    sector_write: float
    tls_handshake: float
    net_rate: float
    margin: float = 3.0
    floor: float = 10.0  # s: no phase bound is shorter (a console command's answer, a loaded runner)
    download_floor: float = 30.0  # s: no whole-download bound is shorter

    def _bound(self, typical: float, floor: float | None = None) -> float:
        return max(self.floor if floor is None else floor, self.margin * typical)

    def boot(self, image_size: int = MIB) -> float:
        """Reset to the application running: ROM, MCUboot hash + signature, app start."""
        return self._bound(self.rom_boot + image_size / self.hash_rate + self.verify + self.app_start)

    def network(self) -> float:
        """Application start to the network being up (``net.up``)."""
        return self._bound(self.network_up)

    def swap(self, slot_size: int) -> float:
        """One MCUboot swap (test, revert or permanent) of a slot of ``slot_size`` bytes."""
        sectors = -(-slot_size // SECTOR)
        return self._bound(sectors * SWAP_PASSES * (self.sector_erase + self.sector_write))

    def chunk(self, chunk_size: int = 2 * KIB) -> float:
        """One OTA chunk: a new TLS connection, the body, and writing it to the secondary slot."""
        write = chunk_size / SECTOR * (self.sector_erase + self.sector_write)
        return self.tls_handshake + chunk_size / self.net_rate + write

    def download(self, size: int, chunk_size: int = 2 * KIB) -> float:
        """A whole OTA download of ``size`` bytes in ``chunk_size`` chunks (one connection each)."""
        chunks = -(-size // chunk_size)
        return self._bound(chunks * self.chunk(chunk_size), self.download_floor)

    def upload(self, body: int = 4 * KIB) -> float:
        """One upload cycle, every retry included (PROTOCOL.md: 3 attempts, a delay between)."""
        attempt = self.tls_handshake + body / self.net_rate
        return self._bound(UPLOAD_ATTEMPTS * attempt + (UPLOAD_ATTEMPTS - 1) * UPLOAD_RETRY_DELAY, 15.0)

    def step(self) -> float:
        """One console command or one firmware phase without bulk work (check, self-test, status)."""
        return self._bound(self.tls_handshake + self.app_start)

    def with_overrides(self, overrides: dict[str, float], where: str = "timing") -> TimingProfile:
        """This profile with some figures replaced (a boards file's ``[board.timing]`` table)."""
        known = {f.name for f in fields(self)} - {"name"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TimingError(f"{where}: unknown timing figure(s) {unknown}; known: {sorted(known)}")
        for key, value in overrides.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise TimingError(f"{where}: timing figure {key!r} must be a positive number, got {value!r}")
        return replace(self, name=f"{self.name}+overrides", **{k: float(v) for k, v in overrides.items()})

    def table(
        self, image_size: int = MIB, slot_size: int = MIB, chunk_size: int = 2 * KIB, flash_baud: int = 0
    ) -> list[tuple[str, float]]:
        """The bounds this profile gives, as (phase, seconds) rows: what the report prints. The flash
        row is esptool's bound for writing the image at ``flash_baud`` (0: the ROM's 115200) over a UART
        (``hil.flashing.timing``: wire time plus esptool's per-MB allowances)."""
        # imported here: hil.flashing loads esptool's logger, and the plugin reads inventories at start
        from hil.flashing.timing import ROM_BAUD, FlashTiming

        flash = FlashTiming(flash_baud or ROM_BAUD)
        return [
            (f"flash ({image_size // KIB} KiB at {flash.baud} baud)", flash.write_bound(image_size)),
            (f"boot ({image_size // KIB} KiB image)", self.boot(image_size)),
            ("network up", self.network()),
            (f"swap ({slot_size // KIB} KiB slot)", self.swap(slot_size)),
            (f"OTA chunk ({chunk_size // KIB} KiB, typical)", self.chunk(chunk_size)),
            (f"OTA download ({image_size // KIB} KiB)", self.download(image_size, chunk_size)),
            ("upload cycle", self.upload()),
            ("step", self.step()),
        ]

    def describe(self, **sizes: int) -> str:
        """One line: the profile's name and its bounds."""
        rows = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in self.table(**sizes))
        return f"{self.name}: {rows}"


# ESP32 (Xtensa LX6, 240 MHz) behind MCUboot, Wi-Fi 4; ESP32-C6 (RISC-V, 160 MHz: slower hashing and
# handshakes), Wi-Fi 6. Other chips take the ESP32's figures until someone measures them.
_ESP32 = TimingProfile(
    name="esp32",
    rom_boot=0.3,
    hash_rate=5 * MIB,
    verify=0.05,
    app_start=0.5,
    network_up=5.0,
    sector_erase=0.045,
    sector_write=0.012,
    tls_handshake=1.0,
    net_rate=500 * KIB,
)
PROFILES: dict[str, TimingProfile] = {
    "esp32": _ESP32,
    "esp32c6": replace(_ESP32, name="esp32c6", hash_rate=3 * MIB, verify=0.08, tls_handshake=1.4),
    # The virtual board: flash is a file, TLS runs on the host, the network is loopback. Floors decide.
    "virtual": TimingProfile(
        name="virtual",
        rom_boot=0.0,
        hash_rate=200 * MIB,
        verify=0.001,
        app_start=0.0,
        network_up=0.1,
        sector_erase=0.00005,
        sector_write=0.00005,
        tls_handshake=0.02,
        net_rate=50 * MIB,
    ),
}


def timing_profile(name: str, chip: str = "auto", overrides: dict[str, float] | None = None) -> TimingProfile:
    """The profile ``name`` ("auto": the chip's, the ESP32's for an unknown chip), with ``overrides``."""
    key = chip if name == "auto" else name
    profile = PROFILES.get(key) if name != "auto" else PROFILES.get(key, PROFILES["esp32"])
    if profile is None:
        raise TimingError(f"timing profile {name!r} does not exist; use auto or one of {sorted(PROFILES)}")
    return profile.with_overrides(overrides, f"timing {name!r}") if overrides else profile


def describe_board_timing(spec: BoardSpec, image_size: int = MIB) -> str:
    """The board's timing profile with its bounds for an image of ``image_size`` bytes, its chip's
    MCUboot slot (the ESP32's while the chip is not known yet) and its own flash baud."""
    slot = layout_for(spec.chip if spec.chip in LAYOUTS else "esp32").slot_size
    return board_timing(spec).describe(image_size=image_size, slot_size=slot, flash_baud=spec.flash_baud)


def board_timing(spec: BoardSpec) -> TimingProfile:
    """The timing profile of an inventory entry: its ``timing`` name (auto: by its chip) and overrides."""
    return timing_profile(spec.timing, spec.chip, dict(spec.timing_overrides) or None)
