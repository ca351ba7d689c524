"""The device identity and keys the app reads from its NVS partition (PROTOCOL.md: namespace
``ecowatt``), and the nonce it writes back."""

from __future__ import annotations

from dataclasses import dataclass

from hil.images import nvs
from hil.images.layout import layout_for
from hil.images.nvs_gen import DEFAULT_COAP_MODE, DEFAULT_WIRE
from hil.sim.runtime import Runtime

NAMESPACE = "ecowatt"
DEFAULT_PSK_ID = "iotlab2024"
DEFAULT_PSK = b"secretkey123456"
OTA_FROM, OTA_TO = "ota_from", "ota_to"  # the OTA attempt in flight across the update reboot


def _as_bytes(value: int | str | bytes | None) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        raise TypeError("an integer where NVS should hold a blob or string")
    return value


@dataclass(frozen=True)
class NvsIdentity:
    """The identity and secrets the device app loaded from its NVS partition (the device-side view of
    what ``hil.images.nvs_gen.DeviceIdentity`` provisioned). ``repr`` never shows the secrets."""

    device_id: str
    nonce: int
    server_url: str = ""
    hmac_key: bytes = b""
    aes_key: bytes = b""
    fota_key: bytes = b""
    psk_id: str = DEFAULT_PSK_ID
    psk: bytes = DEFAULT_PSK
    ca_cert: str = ""
    coap_mode: str = DEFAULT_COAP_MODE  # what plain CoAP serves (hil.images.nvs_gen.COAP_MODES)
    wire: str = DEFAULT_WIRE  # NVS ecowatt/wire as stored (unchecked: the upload cycle refuses unknown ones)

    def __repr__(self) -> str:
        return (
            f"NvsIdentity(device_id={self.device_id!r}, nonce={self.nonce}, "
            f"server_url={self.server_url!r}, secrets=<redacted>)"
        )


@dataclass(frozen=True)
class OtaAttempt:
    """An update the app rebooted into: the version it left and the one it asked MCUboot to test."""

    from_version: str
    to_version: str


class NvsStore:
    """The app's NVS partition: load the identity, commit a new nonce, record an OTA attempt (all
    writes power-cut safe, the NVS way)."""

    def __init__(self, rt: Runtime) -> None:
        layout = layout_for(rt.chip.name)
        self._rt = rt
        self._writer = nvs.NvsWriter(
            rt.flash, layout.nvs, layout.nvs_size, checkpoint=lambda key: rt.checkpoint("nvs.write", key=key)
        )

    def load(self) -> tuple[NvsIdentity | None, list[str]]:
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
        identity = NvsIdentity(
            device_id=device_id,
            nonce=nonce if isinstance(nonce, int) else 0,
            server_url=str(get("server_url") or ""),
            hmac_key=_as_bytes(get("hmac_key")),
            aes_key=_as_bytes(get("aes_key")),
            fota_key=_as_bytes(get("fota_key")),
            psk_id=str(psk_id) if psk_id is not None else DEFAULT_PSK_ID,
            psk=_as_bytes(psk) if psk is not None else DEFAULT_PSK,
            ca_cert=str(get("ca_cert") or ""),
            coap_mode=str(get("coap_mode") or DEFAULT_COAP_MODE),
            wire=str(get("wire") or DEFAULT_WIRE),
        )
        return identity, image.errors

    def setting_flag(self, key: str, *, default: bool) -> bool:
        """``ecowatt/<key>`` as an on/off setting (u8, 0 = off); *default* when absent or not an integer."""
        value = self._writer.read().get(NAMESPACE, key)
        return value != 0 if isinstance(value, int) else default

    def setting_u32(self, key: str) -> int:
        """``ecowatt/<key>`` as an unsigned setting (timer periods); 0 when absent or not an integer."""
        value = self._writer.read().get(NAMESPACE, key)
        return value if isinstance(value, int) and value >= 0 else 0

    def ota_attempt(self) -> OtaAttempt | None:
        """The update recorded before the last OTA reboot (``ota_from``/``ota_to``), if any."""
        image = self._writer.read()
        old, new = image.get(NAMESPACE, OTA_FROM), image.get(NAMESPACE, OTA_TO)
        if isinstance(old, str) and isinstance(new, str) and old and new:
            return OtaAttempt(old, new)
        return None

    def record_ota_attempt(self, attempt: OtaAttempt) -> None:
        """Persist *attempt*; ``ota_to`` goes last, so a power cut in between leaves no half record."""
        self._writer.set(NAMESPACE, OTA_FROM, attempt.from_version, nvs.ItemType.SZ)
        self._writer.set(NAMESPACE, OTA_TO, attempt.to_version, nvs.ItemType.SZ)

    def clear_ota_attempt(self) -> None:
        """Forget the recorded attempt (``ota_to`` first: the record is void from that write on)."""
        self._writer.set(NAMESPACE, OTA_TO, "", nvs.ItemType.SZ)
        self._writer.set(NAMESPACE, OTA_FROM, "", nvs.ItemType.SZ)

    def commit_nonce(self, nonce: int) -> None:
        """Write ``nonce`` as the new NVS ``ecowatt/nonce`` (u32), the NVS way."""
        self._writer.set(NAMESPACE, "nonce", nonce, nvs.ItemType.U32)
