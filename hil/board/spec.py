"""BoardSpec: what the inventory knows about one board (no connection state)."""

from __future__ import annotations

from dataclasses import dataclass, field

# esptool's chip names; "auto" = not configured, learnt by probing the board
KNOWN_CHIPS: tuple[str, ...] = (
    "auto",
    "esp32",
    "esp32s2",
    "esp32s3",
    "esp32c2",
    "esp32c3",
    "esp32c5",
    "esp32c6",
    "esp32c61",
    "esp32h2",
    "esp32p4",
    "esp8266",
)

# EN held low for a hard reset (esptool's 100 ms) of a board that declares no ``reset_pulse``: a dev
# board's EN pin has an RC delay (10 kΩ, 1 µF) that a shorter pulse may not get through.
DEFAULT_RESET_PULSE = 0.1

# How the harness drives a board's reset lines (``BoardSpec.reset``); anything else must be a custom
# sequence in esptool's ``custom_reset_sequence`` syntax ("D0|R1|W0.1|D1|R0|W0.05|D0"). hil.board.reset
# resolves "auto" from the port (USB VID:PID, rfc2217/socket) and runs esptool's reset classes.
RESET_KINDS: tuple[str, ...] = ("auto", "classic", "unix-tight", "usb-jtag", "none")

# Baud rate esptool switches to for flashing, after the stub runs (pytest-embedded's default too);
# 0 stays at the ROM's 115200 (a long cable, a bridge that cannot do more)
DEFAULT_FLASH_BAUD = 921600

# Capability names a scenario may require; anything else in an inventory is accepted but warned about
CAPABILITIES: dict[str, str] = {
    "power": "power can be cut and restored (power_command or a virtual board's switch)",
    "power-cut": "power can be cut at a named firmware checkpoint (Board.arm_power_cut; a virtual board's "
    "control socket)",
    "sniff": "the board's network traffic can be captured on network_interface",
    "reset": "EN/IO0 are wired to DTR/RTS (auto-reset circuit), so resets and download mode work",
    "virtual": "a virtual board served by `hil sim`",
}


@dataclass(frozen=True)
class BoardSpec:
    """One board of the bench. ``port`` is a device path or a pyserial URL (``rfc2217://``...)."""

    name: str
    port: str
    chip: str = "auto"
    mac: str | None = None
    baud: int = 115200
    capabilities: frozenset[str] = field(default_factory=frozenset)
    power_command: str | None = None  # e.g. "uhubctl -l 1-1 -p 2 -a {action}"; {action} = off|on|cycle
    network_interface: str | None = None  # where the board's traffic can be sniffed (bench AP, lo)
    network_address: str | None = None  # the board's IP address as the server sees it
    # a network namespace of this host holding the board's side of that network (a virtual board's
    # own, or a bench AP run in one): the reachability preflight connects from there
    network_namespace: str | None = None
    wifi_ssid: str | None = None  # provisioned into NVS with the password from the variable below
    wifi_password_env: str | None = None  # NAME of the environment variable holding the password
    # s EN is held low for a reset. Declared, the harness drives every reset itself with it, into the
    # ROM loader too; None: DEFAULT_RESET_PULSE, and esptool's own sequences for entering the loader.
    reset_pulse: float | None = None
    reset: str = "auto"  # RESET_KINDS or a custom sequence (esptool's syntax)
    flash_baud: int = DEFAULT_FLASH_BAUD  # 0: flash at the ROM's baud rate
    # timing profile (hil.board.timing): "auto" = by chip; its figures overridden by (name, value) pairs
    timing: str = "auto"
    timing_overrides: tuple[tuple[str, float], ...] = ()
    description: str = ""

    def has(self, capability: str) -> bool:
        """True if the board declares ``capability``."""
        return capability in self.capabilities
