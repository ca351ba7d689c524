"""Board inventory: which boards this run may use.

Sources, in order of precedence: ``--hil-port URL`` (repeatable, optionally ``NAME=URL``), a boards
file (``--hil-boards FILE``, TOML), and auto-detection of USB-serial bridges by VID:PID. An empty
result means "no hardware": the fixtures then start virtual boards.

Boards file::

    [[board]]
    name = "dut1"                                    # unique
    port = "/dev/serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0"
    chip = "esp32"                                   # esptool name, or "auto"
    capabilities = ["reset", "sniff"]
    power_command = "uhubctl -l 1-1 -p 2 -a {action}"  # implies the "power" capability
    network_interface = "wlan1"
    network_address = "192.168.4.2"
    wifi_ssid = "lab-ap"                             # optional: provisioned into NVS (nvs.net80211)
    wifi_password_env = "HIL_WIFI_PASSWORD"          # its password: only ever from this variable
    reset_pulse = 0.1                                # optional: s EN is held low for a reset; given, the
                                                     # harness also enters the ROM loader itself
    reset = "auto"                                   # auto | classic | unix-tight | usb-jtag | none, or an
                                                     # esptool custom sequence "D0|R1|W0.1|D1|R0|W0.05|D0"
    flash_baud = 921600                              # esptool's baud for flashing (0: the ROM's 115200)
    timing = "esp32c6"                               # optional timing profile (default: by chip), or a
                                                     # table: timing = { profile = "esp32", tls_handshake = 2.0 }
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar, overload

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (requires-python >= 3.10): tomllib is tomli, adopted into the standard library in 3.11
    import tomli as tomllib

from hil.board.reset import PULSE_KINDS, check_reset
from hil.board.spec import CAPABILITIES, DEFAULT_FLASH_BAUD, KNOWN_CHIPS, BoardSpec
from hil.board.timing import TimingError, timing_profile

BY_ID_DIR = "/dev/serial/by-id"


@dataclass(frozen=True)
class UsbBridge:
    """A USB device that carries an ESP32's UART."""

    vid: int
    pid: int
    label: str


USB_BRIDGES: tuple[UsbBridge, ...] = (
    UsbBridge(0x303A, 0x1001, "esp-usb-jtag"),  # the chip's own USB-Serial/JTAG (C3, C6, S3, H2, P4)
    UsbBridge(0x10C4, 0xEA60, "cp210x"),  # CP2102/CP2102N/CP2104
    UsbBridge(0x10C4, 0xEA64, "cp2102c"),  # hardware flow control: esptool's flow_control resets
    UsbBridge(0x10C4, 0xEA70, "cp2105"),
    UsbBridge(0x10C4, 0xEA71, "cp2108"),
    UsbBridge(0x1A86, 0x7523, "ch340"),
    UsbBridge(0x1A86, 0x5523, "ch341"),
    UsbBridge(0x1A86, 0x55D3, "ch343"),
    UsbBridge(0x1A86, 0x55D4, "ch9102"),
    UsbBridge(0x067B, 0x2303, "pl2303"),
    UsbBridge(0x0403, 0x6001, "ft232r"),
    UsbBridge(0x0403, 0x6010, "ft2232"),
    UsbBridge(0x0403, 0x6014, "ft232h"),
    UsbBridge(0x0403, 0x6015, "ft-x"),
    UsbBridge(0x303A, 0x0002, "esp-usb-otg"),  # ESP32-S2/S3 USB-OTG CDC of the ROM loader
)
_BRIDGE_BY_ID = {(b.vid, b.pid): b for b in USB_BRIDGES}

_FILE_FIELDS = {
    "name",
    "port",
    "chip",
    "mac",
    "baud",
    "capabilities",
    "power_command",
    "network_interface",
    "network_address",
    "network_namespace",
    "wifi_ssid",
    "wifi_password_env",
    "reset_pulse",
    "reset",
    "flash_baud",
    "timing",
    "description",
}
MAX_RESET_PULSE = 5.0  # s: longer is a typo (ms for s), and every reset would pay for it
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class InventoryError(ValueError):
    """An invalid boards file or port URL; the message names the file, the board and the field."""


def from_urls(urls: Sequence[str]) -> list[BoardSpec]:
    """Boards from ``--hil-port`` values: ``URL`` (named board0, board1...) or ``NAME=URL``."""
    specs = []
    for i, value in enumerate(urls):
        name, sep, url = value.partition("=")
        if not sep or "://" in name or "/" in name or not _NAME_RE.match(name):
            name, url = f"board{i}", value
        if not url:
            raise InventoryError(f"--hil-port {value!r}: empty port")
        specs.append(BoardSpec(name=name, port=url))
    _check_unique(specs, "--hil-port")
    return specs


def _check_unique(specs: Iterable[BoardSpec], where: str) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise InventoryError(f"{where}: board name {spec.name!r} is used twice; names must be unique")
        seen.add(spec.name)


_T = TypeVar("_T")


@overload
def _field(where: str, entry: Mapping[str, object], key: str, kind: type[_T]) -> _T | None: ...
@overload
def _field(where: str, entry: Mapping[str, object], key: str, kind: type[_T], default: _T) -> _T: ...
def _field(where: str, entry: Mapping[str, object], key: str, kind: type[_T], default: _T | None = None) -> _T | None:
    value = entry.get(key, default)
    if value is None or isinstance(value, kind):
        return value
    raise InventoryError(f"{where}: field {key!r} must be a {kind.__name__}, got {value!r}")


def _spec_from_entry(path: Path, index: int, entry: object) -> BoardSpec:
    if not isinstance(entry, dict):
        raise InventoryError(f"{path}: [[board]] #{index + 1} is not a table")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InventoryError(f"{path}: [[board]] #{index + 1}: field 'name' missing or not [A-Za-z0-9_.-]+")
    where = f"{path}: board {name!r}"
    if "wifi_password" in entry:  # refused before anything else: a secret must never sit in a file
        raise InventoryError(
            f"{where}: field 'wifi_password' is refused: secrets are never read from files. Put the password "
            'in an environment variable and name it with wifi_password_env = "HIL_WIFI_PASSWORD"'
        )
    unknown = sorted(set(entry) - _FILE_FIELDS)
    if unknown:
        raise InventoryError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(_FILE_FIELDS)}")
    port = _field(where, entry, "port", str)
    if not port:
        raise InventoryError(f"{where}: field 'port' is required (a device path or rfc2217://host:port)")
    chip = _field(where, entry, "chip", str, "auto")
    if chip not in KNOWN_CHIPS:
        raise InventoryError(f"{where}: field 'chip' = {chip!r} is not a known chip; use one of {list(KNOWN_CHIPS)}")
    caps = _field(where, entry, "capabilities", list, [])
    if not all(isinstance(c, str) for c in caps):
        raise InventoryError(f"{where}: field 'capabilities' must be a list of strings")
    power_command = _field(where, entry, "power_command", str)
    capabilities = frozenset(caps) | ({"power"} if power_command else frozenset())
    if "power" in capabilities and not power_command:
        raise InventoryError(
            f"{where}: capability 'power' needs field 'power_command' (the command that "
            "switches the board's power; {action} is replaced by off/on/cycle)"
        )
    odd = sorted(capabilities - CAPABILITIES.keys())
    if odd:  # refused, not warned: a misspelt capability would silently skip every scenario needing it
        raise InventoryError(f"{where}: capabilities {odd} are unknown; use some of {sorted(CAPABILITIES)}")
    baud = _field(where, entry, "baud", int, 115200)
    reset_pulse = entry.get("reset_pulse")
    if reset_pulse is not None and (
        isinstance(reset_pulse, bool)
        or not isinstance(reset_pulse, (int, float))
        or not 0 <= reset_pulse <= MAX_RESET_PULSE
    ):
        raise InventoryError(
            f"{where}: field 'reset_pulse' must be the seconds EN is held low for a reset (0 to {MAX_RESET_PULSE:g}), "
            f"got {reset_pulse!r}"
        )
    timing, timing_overrides = _timing(where, entry.get("timing", "auto"), chip)
    reset = _reset(where, _field(where, entry, "reset", str, "auto"), port, reset_pulse)
    flash_baud = _field(where, entry, "flash_baud", int, DEFAULT_FLASH_BAUD)
    if isinstance(flash_baud, bool) or flash_baud < 0:
        raise InventoryError(
            f"{where}: field 'flash_baud' must be a baud rate (0: stay at the ROM's), got {flash_baud!r}"
        )
    return BoardSpec(
        name=name,
        port=port,
        chip=chip,
        mac=_field(where, entry, "mac", str),
        baud=baud,
        capabilities=capabilities,
        power_command=power_command,
        network_interface=_field(where, entry, "network_interface", str),
        network_address=_field(where, entry, "network_address", str),
        network_namespace=_field(where, entry, "network_namespace", str),
        wifi_ssid=_field(where, entry, "wifi_ssid", str),
        wifi_password_env=_wifi_password_env(where, entry),
        reset_pulse=None if reset_pulse is None else float(reset_pulse),
        reset=reset,
        flash_baud=flash_baud,
        timing=timing,
        timing_overrides=timing_overrides,
        description=_field(where, entry, "description", str, ""),
    )


def _timing(where: str, value: object, chip: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    """``timing = "esp32c6"`` or ``[board.timing]`` with ``profile = ...`` and figures to override."""
    table = {"profile": value} if isinstance(value, str) else value
    if not isinstance(table, dict):
        raise InventoryError(f"{where}: field 'timing' must be a profile name or a table, got {value!r}")
    figures = {k: v for k, v in table.items() if k != "profile"}
    name = table.get("profile", "auto")
    try:
        timing_profile(str(name), chip, figures or None)  # validates the name and every figure
    except TimingError as exc:
        raise InventoryError(f"{where}: {exc}") from None
    return str(name), tuple(sorted((k, float(v)) for k, v in figures.items()))


def _wifi_password_env(where: str, entry: Mapping[str, object]) -> str | None:
    """The variable name of ``wifi_password_env`` (only with ``wifi_ssid``: a password for no network is a typo)."""
    name = _field(where, entry, "wifi_password_env", str)
    if name is not None and not _ENV_NAME_RE.match(name):
        raise InventoryError(f"{where}: field 'wifi_password_env' must be an environment variable name, got {name!r}")
    if name is not None and entry.get("wifi_ssid") is None:
        raise InventoryError(
            f"{where}: field 'wifi_password_env' needs 'wifi_ssid' (the network it is the password of)"
        )
    return name


def _reset(where: str, value: str, port: str, reset_pulse: object) -> str:
    """``reset`` checked: a kind or an esptool custom sequence, that fits the port and ``reset_pulse``."""
    problem = check_reset(value)
    if problem is not None:
        raise InventoryError(f"{where}: field 'reset': {problem}")
    if value == "unix-tight" and "://" in port:
        raise InventoryError(
            f"{where}: field 'reset' = 'unix-tight' needs a local serial device (one ioctl sets DTR and RTS), "
            f"not {port}; use 'classic'"
        )
    if reset_pulse is not None and value not in ("auto", *PULSE_KINDS):
        raise InventoryError(
            f"{where}: field 'reset_pulse' is the EN pulse of the DTR/RTS auto-reset circuit; it does not apply "
            f"to reset = {value!r} (drop reset_pulse, or use reset = 'classic')"
        )
    return value


def load_boards_file(path: str | Path) -> list[BoardSpec]:
    """Parse and validate a boards file (see the module docstring)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InventoryError(f"cannot read boards file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"boards file {path} is not valid TOML: {exc}") from exc
    entries = data.get("board")
    if not isinstance(entries, list) or not entries:
        raise InventoryError(f"boards file {path} has no [[board]] entries")
    specs = [_spec_from_entry(path, i, entry) for i, entry in enumerate(entries)]
    _check_unique(specs, str(path))
    return specs


def by_id_links(directory: str = BY_ID_DIR) -> dict[str, str]:
    """Map real device paths (``/dev/ttyUSB0``) to their stable ``/dev/serial/by-id`` names."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return {}
    return {os.path.realpath(os.path.join(directory, n)): os.path.join(directory, n) for n in names}


def detect(
    list_ports: Callable[[], Iterable] | None = None, links: Callable[[], Mapping[str, str]] = by_id_links
) -> list[BoardSpec]:
    """Boards found on USB by VID:PID, named ``<bridge>-<serial>``, ports by-id where available.

    ``list_ports`` returns pyserial ``ListPortInfo``-like objects (``device``, ``vid``, ``pid``,
    ``serial_number``); it defaults to ``serial.tools.list_ports.comports``.
    """
    if list_ports is None:
        from serial.tools.list_ports import comports

        list_ports = comports
    stable = links()
    specs = []
    for info in sorted(list_ports(), key=lambda p: p.device):
        bridge = _BRIDGE_BY_ID.get((info.vid, info.pid))
        if bridge is None:
            continue
        device = stable.get(os.path.realpath(info.device), stable.get(info.device, info.device))
        ident = re.sub(r"[^A-Za-z0-9_.-]", "_", info.serial_number or os.path.basename(info.device))
        specs.append(
            BoardSpec(
                name=f"{bridge.label}-{ident}",
                port=device,
                capabilities=frozenset({"reset"}),
                description=f"{bridge.label} {info.vid:04x}:{info.pid:04x}",
            )
        )
    # two bridges with the same serial number (FT2232 has two ports): keep names unique
    counts: dict[str, int] = {}
    unique = []
    for spec in specs:
        n = counts.get(spec.name, 0)
        counts[spec.name] = n + 1
        unique.append(spec if n == 0 else replace(spec, name=f"{spec.name}-{n}"))
    return unique


def inventory(
    urls: Sequence[str] = (), boards_file: str | Path | None = None, autodetect: Callable[[], list[BoardSpec]] = detect
) -> list[BoardSpec]:
    """The boards of this run: URLs and the boards file if given (both allowed), else detected ones."""
    specs = from_urls(urls) if urls else []
    if boards_file:
        specs += load_boards_file(boards_file)
    if specs:
        _check_unique(specs, "--hil-port and --hil-boards")
        return specs
    return autodetect()


def no_hardware_message(urls: Sequence[str] = (), boards_file: str | Path | None = None) -> str:
    """Why ``--hil-require-hardware`` refuses the run: what was searched, and what to do."""
    bridges = ", ".join(f"{b.vid:04x}:{b.pid:04x} ({b.label})" for b in USB_BRIDGES)
    ports = ", ".join(urls) if urls else "none given"
    return (
        "--hil-require-hardware: no real board, and virtual boards are refused. "
        f"Looked for: --hil-port / ini hil_port ({ports}); --hil-boards / ini hil_boards "
        f"({boards_file or 'none given'}); USB serial bridges by VID:PID [{bridges}]: none is plugged in. "
        "Plug a board in (`hil boards` lists what is detected), give its port with --hil-port URL or a "
        "boards file with --hil-boards FILE, or add its bridge's VID:PID to hil.board.inventory.USB_BRIDGES; "
        "drop --hil-require-hardware to run on virtual boards."
    )
