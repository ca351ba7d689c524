"""The device identity and keys the app reads from its NVS partition (PROTOCOL.md: namespace
``ecowatt``), and the nonce it writes back."""

from __future__ import annotations

from dataclasses import dataclass

from hil.images import nvs
from hil.images.layout import layout_for
from hil.sim.runtime import Runtime

NAMESPACE = "ecowatt"
DEFAULT_PSK_ID = "iotlab2024"
DEFAULT_PSK = b"secretkey123456"


def _as_bytes(value: int | str | bytes | None) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        raise TypeError("an integer where NVS should hold a blob or string")
    return value


@dataclass(frozen=True)
class DeviceIdentity:
    """Identity and secrets of one device. ``repr`` never shows the secrets."""

    device_id: str
    nonce: int
    server_url: str = ""
    hmac_key: bytes = b""
    aes_key: bytes = b""
    fota_key: bytes = b""
    psk_id: str = DEFAULT_PSK_ID
    psk: bytes = DEFAULT_PSK
    ca_cert: str = ""

    def __repr__(self) -> str:
        return (f"DeviceIdentity(device_id={self.device_id!r}, nonce={self.nonce}, "
                f"server_url={self.server_url!r}, secrets=<redacted>)")


class NvsStore:
    """The app's NVS partition: load the identity, commit a new nonce (power-cut safe)."""

    def __init__(self, rt: Runtime) -> None:
        layout = layout_for(rt.chip.name)
        self._rt = rt
        self._writer = nvs.NvsWriter(rt.flash, layout.nvs, layout.nvs_size,
                                     checkpoint=lambda key: rt.checkpoint("nvs.write", key=key))

    def load(self) -> tuple[DeviceIdentity | None, list[str]]:
        """The provisioned identity (``None`` without a device id) and NVS integrity problems."""
        image = self._writer.read()
        if NAMESPACE not in image.namespaces():
            return None, image.errors

        def get(key: str) -> int | str | bytes | None:
            return image.get(NAMESPACE, key)

        device_id, nonce = get("device_id"), get("nonce")
        if not isinstance(device_id, str) or not device_id:
            return None, image.errors
        psk_id, psk = get("psk_id"), get("psk")
        identity = DeviceIdentity(
            device_id=device_id,
            nonce=nonce if isinstance(nonce, int) else 0,
            server_url=str(get("server_url") or ""),
            hmac_key=_as_bytes(get("hmac_key")),
            aes_key=_as_bytes(get("aes_key")),
            fota_key=_as_bytes(get("fota_key")),
            psk_id=str(psk_id) if psk_id is not None else DEFAULT_PSK_ID,
            psk=_as_bytes(psk) if psk is not None else DEFAULT_PSK,
            ca_cert=str(get("ca_cert") or ""),
        )
        return identity, image.errors

    def commit_nonce(self, nonce: int) -> None:
        """Write ``nonce`` as the new NVS ``ecowatt/nonce`` (u32), the NVS way."""
        self._writer.set(NAMESPACE, "nonce", nonce, nvs.ItemType.U32)
