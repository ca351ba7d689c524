"""The station coming up (ESP-IDF ``esp_wifi`` + ``esp_netif``), before the app's first upload or
OTA check: the credentials the Wi-Fi driver loads from NVS (``nvs.net80211/sta.ssid``, what Espressif's
partition generator provisions), the association line, and the IP event line the harness waits for::

    I (1064) wifi:connected with lab-ap, aid = 1, channel 1, BW20, bssid = 02:00:0a:4d:00:01
    I (2345) esp_netif_handlers: sta ip: 10.77.0.2, mask: 255.255.255.252, gw: 10.77.0.1

The virtual board's network is always there (its station: :class:`hil.sim.station.Station`); without
provisioned credentials it prints only the IP line, like a board whose firmware brings its own.
The password is never printed.
"""

from __future__ import annotations

import ipaddress
import struct

from hil.images import nvs
from hil.images.layout import layout_for
from hil.sim.firmware import net
from hil.sim.firmware.idf_log import IdfLog
from hil.sim.runtime import Runtime

WIFI_NAMESPACE = "nvs.net80211"
SSID_MAX = 32


def provisioned_ssid(rt: Runtime) -> str | None:
    """The SSID in ``nvs.net80211/sta.ssid`` (``{u32 length, 32 bytes}``), or None."""
    layout = layout_for(rt.chip.name)
    blob = nvs.parse(rt.flash.read(layout.nvs, layout.nvs_size)).get(WIFI_NAMESPACE, "sta.ssid")
    if not isinstance(blob, bytes) or len(blob) < 4:
        return None
    (length,) = struct.unpack_from("<I", blob)
    ssid = blob[4 : 4 + min(length, SSID_MAX)]
    return ssid.decode("utf-8", "replace") if ssid else None


def bring_up(rt: Runtime, log: IdfLog) -> None:
    """Associate (with the provisioned SSID, if any) and print the station's IP event line."""
    station = net.station_of(rt)
    ssid = provisioned_ssid(rt)
    if ssid is not None:
        gateway = ipaddress.ip_address(station.gateway).packed[-4:]
        bssid = "02:00:" + ":".join(f"{b:02x}" for b in gateway)  # the AP's: locally administered, from its IP
        log.raw(f"I ({rt.millis()}) wifi:connected with {ssid}, aid = 1, channel 1, BW20, bssid = {bssid}")
    log.i("esp_netif_handlers", f"sta ip: {station.address}, mask: {station.mask}, gw: {station.gateway}")
