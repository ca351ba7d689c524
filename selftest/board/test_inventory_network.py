"""The inventory's network fields: the board's network namespace, and Wi-Fi credentials named, never
held: ``wifi_ssid`` with ``wifi_password_env`` (a variable name); a password in the file is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.board import InventoryError, load_boards_file

BOARD = """
[[board]]
name = "c6"
port = "/dev/serial/by-id/usb-Espressif_USB_JTAG_serial_debug_unit_40:4C:CA:00:00:02-if00"
chip = "esp32c6"
network_interface = "wlan1"
network_address = "192.168.4.2"
"""


def _load(tmp_path: Path, extra: str):
    path = tmp_path / "boards.toml"
    path.write_text(BOARD + extra)
    return load_boards_file(path)


def test_wifi_and_namespace_fields(tmp_path: Path) -> None:
    fields = 'wifi_ssid = "lab-ap"\nwifi_password_env = "HIL_WIFI_PASSWORD"\nnetwork_namespace = "ap"\n'
    (spec,) = _load(tmp_path, fields)
    assert (spec.wifi_ssid, spec.wifi_password_env, spec.network_namespace) == ("lab-ap", "HIL_WIFI_PASSWORD", "ap")
    (plain,) = _load(tmp_path, "")
    assert (plain.wifi_ssid, plain.wifi_password_env, plain.network_namespace) == (None, None, None)


def test_a_password_in_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        InventoryError,
        match=r"board 'c6': field 'wifi_password' is refused: secrets are never read "
        r"from files.*wifi_password_env = \"HIL_WIFI_PASSWORD\"",
    ):
        _load(tmp_path, 'wifi_ssid = "lab-ap"\nwifi_password = "hunter2hunter2"\n')


@pytest.mark.parametrize(
    "extra, message",
    [
        ('wifi_password_env = "HIL_WIFI_PASSWORD"\n', r"'wifi_password_env' needs 'wifi_ssid'"),
        ('wifi_ssid = "lab-ap"\nwifi_password_env = "hunter2 hunter2"\n', r"must be an environment variable name"),
    ],
)
def test_bad_wifi_fields_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        _load(tmp_path, extra)
