"""hil.server: the reference EcoWatt server (upload and OTA), SQLite storage, TEST ONLY TLS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hil.lazy import lazy_exports

if TYPE_CHECKING:
    from hil.server.app import app_state, close_app, create_app
    from hil.server.config import DeviceKeys, ServerConfig, devices_from_entries, load_devices
    from hil.server.defects import CATALOGUE as DEFECTS
    from hil.server.handle import ServerHandle

# imported on first use: the pytest plugin reads hil.server.options and .defects in every run (no flask)
__getattr__ = lazy_exports(
    __name__,
    {
        "DEFECTS": "hil.server.defects:CATALOGUE",
        "DeviceKeys": "hil.server.config",
        "ServerConfig": "hil.server.config",
        "ServerHandle": "hil.server.handle",
        "app_state": "hil.server.app",
        "close_app": "hil.server.app",
        "create_app": "hil.server.app",
        "devices_from_entries": "hil.server.config",
        "load_devices": "hil.server.config",
    },
)

__all__ = [
    "DEFECTS",
    "DeviceKeys",
    "ServerConfig",
    "ServerHandle",
    "app_state",
    "close_app",
    "create_app",
    "devices_from_entries",
    "load_devices",
]
