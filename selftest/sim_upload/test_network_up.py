"""The firmware's network-up line: ESP-IDF's ``esp_netif_handlers: sta ip: ...`` with the station's
address, mask and gateway, after the NVS load and before any upload; the association line names the
SSID provisioned in ``nvs.net80211`` (Espressif's generator writes it), never the password. The
profiles' ``net.up`` event reads the line's fields."""

from __future__ import annotations

import pytest
from sim_boot.fakes import FakeFlash, _write

from hil.console.profile import load_profile
from hil.images.nvs_gen import DeviceIdentity, build_nvs
from hil.sim.station import Station
from sim_upload.conftest import LAYOUT, PLACEHOLDER_URL

PASSWORD = "correct-horse-battery"
REAL_IDF_LINE = "I (2345) esp_netif_handlers: sta ip: 192.168.4.2, mask: 255.255.255.0, gw: 192.168.4.1"


def test_network_up_line_follows_the_nvs_load(make_device) -> None:
    rt, _ = make_device(PLACEHOLDER_URL)
    loaded = next(i for i, line in enumerate(rt.lines) if "Nonce loaded from NVS" in line)
    (up,) = [i for i, line in enumerate(rt.lines) if "esp_netif_handlers" in line]
    assert up > loaded  # the network comes up after NVS, before the console serves an upload
    assert rt.lines[up].endswith("esp_netif_handlers: sta ip: 127.0.0.1, mask: 255.0.0.0, gw: 127.0.0.1")


def test_network_up_line_names_the_station(nvs_image: bytes, booted) -> None:
    from hil.sim.firmware import start
    from sim_upload.fakes import ThreadedRuntime

    flash = FakeFlash()
    _write(flash, LAYOUT.nvs, nvs_image)
    rt = ThreadedRuntime(flash)
    rt.station = Station("10.77.3.2", 30, "10.77.3.1", "hil-sim-1", "hsim1")  # type: ignore[attr-defined]
    try:
        start(rt, booted)
    finally:
        rt.halt()
    (line,) = [line for line in rt.lines if "esp_netif_handlers" in line]
    assert line.endswith("esp_netif_handlers: sta ip: 10.77.3.2, mask: 255.255.255.252, gw: 10.77.3.1")


def test_provisioned_ssid_is_associated_and_the_password_never_printed(
    identity: DeviceIdentity, tmp_path, booted
) -> None:
    from hil.sim.firmware import start
    from sim_upload.fakes import ThreadedRuntime

    wifi = identity.replace(wifi_ssid="lab-ap", wifi_password=PASSWORD)
    flash = FakeFlash()
    _write(flash, LAYOUT.nvs, build_nvs(wifi, tmp_path / "nvs.bin").read_bytes())
    rt = ThreadedRuntime(flash)
    try:
        start(rt, booted)
    finally:
        rt.halt()
    text = "\n".join(rt.lines)
    assert "wifi:connected with lab-ap, aid = 1" in text
    assert text.index("wifi:connected") < text.index("esp_netif_handlers: sta ip:")
    assert PASSWORD not in text


@pytest.mark.parametrize("profile", ["ecowatt-idf", "ecowatt-arduino"])
def test_profiles_net_up_event_reads_the_real_idf_line(profile: str) -> None:
    match = load_profile(profile).event("net.up").search(REAL_IDF_LINE)
    assert match is not None and match.group("ip") == "192.168.4.2"
    if profile == "ecowatt-idf":
        assert match.group("mask", "gw", "netif") == ("255.255.255.0", "192.168.4.1", "sta")
