"""Lab identities and the server registry under a wire profile's key scope.

``device`` scope: each device has its own keys, derived from the lab key store (PROTOCOL.md).
``global`` scope: one upload key for every device (``ecowatt-fw134``: the key published with the
firmware, TEST ONLY); the registry then lists which device ids the server accepts.
"""

from __future__ import annotations

from collections.abc import Iterable

from hil.images import nvs_gen
from hil.images.keys import KeyStore
from hil.images.nvs_gen import DeviceIdentity
from hil.server.config import DeviceKeys
from hil.wire.profile import WireProfile


def lab_identity(
    profile: WireProfile, keys: KeyStore, device_id: str | None = None, **overrides: object
) -> DeviceIdentity:
    """The TEST ONLY identity of *device_id* (default: the profile's) as a device of this format holds it."""
    device_id = device_id or profile.default_device_id
    base = nvs_gen.lab_identity(keys, device_id)
    if profile.key_scope == "global":
        assert profile.test_hmac_key is not None and profile.test_aes_key is not None  # checked at load
        base = base.replace(hmac_key=profile.test_hmac_key, aes_key=profile.test_aes_key)
    changes: dict[str, object] = {"nonce": profile.nonce.start(profile.nonce.provisioned)}
    if profile.name in nvs_gen.WIRE_FORMATS:
        changes["wire"] = profile.name
    return base.replace(**{**changes, **overrides})


def registry(profile: WireProfile, keys: KeyStore, device_ids: Iterable[str]) -> dict[str, DeviceKeys]:
    """The reference server's registry for *device_ids* under this profile's key scope."""
    out = {}
    for device_id in device_ids:
        identity = lab_identity(profile, keys, device_id)
        out[device_id] = DeviceKeys(device_id, identity.hmac_key, identity.aes_key)
    return out
