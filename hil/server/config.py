"""Server configuration and the device registry file (``{"devices":[{"device_id","hmac_key","aes_key"}]}``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.protocol.readings import valid_device_id
from hil.protocol.upload import AES_KEY_BYTES, HMAC_KEY_BYTES, MAX_BODY_BYTES
from hil.wire.profile import WireProfile, default_profile

DEFAULT_PORT = 5001
DEFAULT_RATE_LIMIT = 10  # uploads per device per window (PROTOCOL.md's documented default)
DEFAULT_RATE_WINDOW_S = 60.0


@dataclass(frozen=True)
class DeviceKeys:
    """One registered device. Keys never appear in repr, logs or responses."""

    device_id: str
    hmac_key: bytes = field(repr=False)
    aes_key: bytes = field(repr=False)


class DeviceRegistryError(ValueError):
    """The devices file is unreadable or an entry is malformed."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything :func:`hil.server.create_app` needs.

    ``rate_limit`` uploads per ``rate_window_s`` per device; ``rate_limit=0`` disables limiting
    (benchmarks). ``firmware_dir`` holds the FOTA packages (``<dir>/<version>/``) the OTA endpoints
    offer; ``attacker_key`` is the untrusted key of the ``wrong_signing_key`` fault; ``fota_signing_key``
    the key the packages were signed with (a format that signs when it serves, ``ecowatt-fw134``'s
    PKCS#1 v1.5, needs it). ``clock`` is
    monotonic seconds, injectable so tests need not wait a minute. ``wire`` is the wire profile whose
    upload route, envelope and replies it serves (``max_body_bytes`` stays the server's own limit).
    """

    db_path: Path
    devices: Mapping[str, DeviceKeys]
    admin_token: str = field(repr=False)
    rate_limit: int = DEFAULT_RATE_LIMIT
    rate_window_s: float = DEFAULT_RATE_WINDOW_S
    max_body_bytes: int = MAX_BODY_BYTES
    firmware_dir: Path | None = None
    attacker_key: Path | None = None  # signs the OTA fault wrong_signing_key; None: a throwaway key
    fota_signing_key: Path | None = None  # TEST ONLY FOTA key; fw134 OTA signs the packages' digests with it
    clock: Callable[[], float] = time.monotonic
    wire: WireProfile = field(default_factory=default_profile)  # the upload format it speaks

    def __post_init__(self) -> None:
        if not self.admin_token:
            raise ValueError("admin_token must not be empty: the admin API would be open to anyone")
        if self.rate_limit < 0 or self.rate_window_s <= 0:
            raise ValueError(f"rate limit {self.rate_limit}/{self.rate_window_s}s: need limit >= 0 and window > 0")


def devices_from_entries(entries: Iterable[Mapping[str, Any]], *, source: str = "devices") -> dict[str, DeviceKeys]:
    """Validate registry entries (hex keys) into ``{device_id: DeviceKeys}``."""
    out: dict[str, DeviceKeys] = {}
    for index, entry in enumerate(entries):
        where = f"{source}: devices[{index}]"
        if not isinstance(entry, Mapping):
            raise DeviceRegistryError(f"{where} must be an object")
        device_id = entry.get("device_id")
        if not valid_device_id(device_id):
            raise DeviceRegistryError(f"{where}: device_id must be 1-32 chars of [A-Za-z0-9_-]")
        if device_id in out:
            raise DeviceRegistryError(f"{where}: device_id {device_id!r} is listed twice")
        out[device_id] = DeviceKeys(
            device_id,
            _hex_key(entry, "hmac_key", HMAC_KEY_BYTES, where),
            _hex_key(entry, "aes_key", AES_KEY_BYTES, where),
        )
    return out


def load_devices(path: Path) -> dict[str, DeviceKeys]:
    """Read a devices file (e.g. ``firmware_builds/devices.json`` from ``hil images build``)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeviceRegistryError(f"{path}: cannot read the device registry ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("devices"), list):
        raise DeviceRegistryError(f'{path}: expected {{"devices": [{{"device_id", "hmac_key", "aes_key"}}]}}')
    return devices_from_entries(doc["devices"], source=str(path))


def _hex_key(entry: Mapping[str, Any], name: str, size: int, where: str) -> bytes:
    value = entry.get(name)
    try:
        key = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        key = None
    if key is None or len(key) != size:
        # Say what is wrong without echoing the (possibly real) key material.
        raise DeviceRegistryError(f"{where}: {name} must be {size} bytes as hex ({2 * size} hex digits)")
    return key
