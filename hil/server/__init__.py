"""hil.server: the reference EcoWatt server (upload now, OTA later), SQLite storage, TEST ONLY TLS."""

from hil.server.app import app_state, close_app, create_app
from hil.server.config import DeviceKeys, ServerConfig, devices_from_entries, load_devices
from hil.server.defects import CATALOGUE as DEFECTS
from hil.server.handle import ServerHandle

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
