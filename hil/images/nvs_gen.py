"""Device provisioning: a device identity written into an NVS partition by Espressif's own
``esp-idf-nvs-partition-gen`` (the tool a factory line uses), namespace ``ecowatt``, and optionally
Wi-Fi station credentials. PROTOCOL.md names no Wi-Fi keys, so they go where the ESP-IDF Wi-Fi
driver keeps its own (``nvs.net80211``: ``sta.ssid``, ``sta.pswd``), as the generator's Wi-Fi support
writes them: the driver loads them at ``esp_wifi_init`` unless the firmware sets another configuration.

Fixtures call ``build_nvs`` with other identities (another device id, a wrong key, another server
URL); ``DeviceIdentity``'s repr never shows keys so it can be logged.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.images.layout import layout_for

if TYPE_CHECKING:
    from hil.images.keys import KeyStore

NVS_NAMESPACE = "ecowatt"
NVS_SIZE = layout_for("esp32").nvs_size
DEFAULT_DEVICE_ID = "EW-0001"
DEFAULT_NONCE = 10000
DEFAULT_PSK_ID = "iotlab2024"
DEFAULT_PSK = "secretkey123456"  # the SOP's documented default: TEST ONLY
DEFAULT_SERVER_URL = "http://127.0.0.1:5001"
# NVS ecowatt/coap_mode: what plain CoAP (UDP 5683) serves; CoAPS (5684) always serves everything.
# off = port 5683 closed; secure-only = reads only (PUT /light, POST /ota answer 4.01); open = all.
COAP_MODES = ("off", "secure-only", "open")
DEFAULT_COAP_MODE = "secure-only"
# NVS ecowatt/wire: the upload format the device speaks (hil/wire/profiles). Written only when it is not
# the default, so images of default identities stay byte-identical to those built before the key existed.
WIRE_FORMATS = ("ecowatt-api", "ecowatt-fw134")
DEFAULT_WIRE = "ecowatt-api"
NVS_GEN = (sys.executable, "-m", "esp_idf_nvs_partition_gen")
NVS_GEN_TIMEOUT = 60.0
_DEVICE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
WIFI_NAMESPACE = "nvs.net80211"
# The keys the harness owns in WIFI_NAMESPACE when it provisions Wi-Fi: the two it writes and the three
# the generator adds with them (AP info, PMK and "AP switch" reset, so the driver derives them afresh).
WIFI_KEYS = frozenset({"sta.ssid", "sta.pswd", "sta.apinfo", "sta.pmk", "sta.apsw"})
WIFI_SSID_MAX = 32  # bytes (wifi_sta_config_t.ssid)
WIFI_PASSWORD_MAX = 64  # bytes (wifi_sta_config_t.password: 8..63 passphrase or a 64-hex-digit PSK)


class NvsBuildError(RuntimeError):
    """esp-idf-nvs-partition-gen failed; the message names the output and device, never keys."""


@dataclass(frozen=True)
class DeviceIdentity:
    """What a device is provisioned with (PROTOCOL.md "Keys and identity")."""

    device_id: str
    hmac_key: bytes = field(repr=False)
    aes_key: bytes = field(repr=False)
    fota_key: bytes = field(repr=False)
    nonce: int = DEFAULT_NONCE
    psk_id: str = DEFAULT_PSK_ID
    psk: str = field(default=DEFAULT_PSK, repr=False)
    server_url: str = DEFAULT_SERVER_URL
    ca_cert: str | None = field(default=None, repr=False)
    encrypt: bool = False  # AES-128-CBC on the upload payload
    upload_period_s: int = 0  # periodic upload timer; 0 = uploads on the console command only
    coap_mode: str = DEFAULT_COAP_MODE  # one of COAP_MODES
    wire: str = DEFAULT_WIRE  # upload format, one of WIRE_FORMATS
    ota_period_s: int = 0  # periodic update check; 0 = checks on the console command only
    console: bool = True  # False: the firmware serves no console commands (it acts on its timers only)
    wifi_ssid: str | None = None  # station credentials (nvs.net80211); None = leave the board's own
    wifi_password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not _DEVICE_ID_RE.fullmatch(self.device_id):
            raise ValueError(f"device_id {self.device_id!r}: 1-32 characters of [A-Za-z0-9_-]")
        for name, want in (("hmac_key", 32), ("aes_key", 16), ("fota_key", 32)):
            if len(getattr(self, name)) != want:
                raise ValueError(f"device {self.device_id}: {name} must be {want} bytes")
        if not 0 <= self.nonce <= 0xFFFFFFFF:
            raise ValueError(f"device {self.device_id}: nonce {self.nonce} is not a u32")
        for name in ("upload_period_s", "ota_period_s"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise ValueError(f"device {self.device_id}: {name} {getattr(self, name)} is not a u32")
        if len(self.psk_id.encode()) > 64 or len(self.psk.encode()) > 64:
            raise ValueError(f"device {self.device_id}: PSK identity and key are at most 64 bytes")
        if self.coap_mode not in COAP_MODES:
            raise ValueError(
                f"device {self.device_id}: coap_mode {self.coap_mode!r} is not one of {', '.join(COAP_MODES)}"
            )
        if self.wire not in WIRE_FORMATS:
            raise ValueError(
                f"device {self.device_id}: wire format {self.wire!r} is not one of {', '.join(WIRE_FORMATS)}"
            )
        if self.wifi_ssid is not None and not 0 < len(self.wifi_ssid.encode()) <= WIFI_SSID_MAX:
            raise ValueError(f"device {self.device_id}: Wi-Fi SSID {self.wifi_ssid!r} must be 1-{WIFI_SSID_MAX} bytes")
        if self.wifi_password and not 8 <= len(self.wifi_password.encode()) <= WIFI_PASSWORD_MAX:
            raise ValueError(f"device {self.device_id}: the Wi-Fi password must be 8-{WIFI_PASSWORD_MAX} bytes")
        if self.wifi_password and self.wifi_ssid is None:
            raise ValueError(f"device {self.device_id}: a Wi-Fi password without an SSID")

    def owns(self, namespace: str, key: str) -> bool:
        """True for the NVS entries this identity provisions (they replace the board's): the whole
        ``ecowatt`` namespace, and the Wi-Fi station keys when it carries Wi-Fi credentials."""
        if namespace == NVS_NAMESPACE:
            return True
        return self.wifi_ssid is not None and namespace == WIFI_NAMESPACE and key in WIFI_KEYS

    def replace(self, **changes: Any) -> DeviceIdentity:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def registry_entry(self) -> dict[str, str]:
        """This device as a row of the server's device registry (``--devices`` file)."""
        return {"device_id": self.device_id, "hmac_key": self.hmac_key.hex(), "aes_key": self.aes_key.hex()}


def nvs_csv(identity: DeviceIdentity, ca_cert_file: Path | None = None) -> str:
    """The generator's CSV for ``identity``. ``ca_cert_file`` holds the CA PEM when there is one
    (a multi-line PEM goes in as a ``file`` row rather than inside the CSV)."""
    rows = [
        ("key", "type", "encoding", "value"),
        (NVS_NAMESPACE, "namespace", "", ""),
        ("device_id", "data", "string", identity.device_id),
        ("hmac_key", "data", "hex2bin", identity.hmac_key.hex()),
        ("aes_key", "data", "hex2bin", identity.aes_key.hex()),
        ("nonce", "data", "u32", str(identity.nonce)),
        ("fota_key", "data", "hex2bin", identity.fota_key.hex()),
        ("psk_id", "data", "string", identity.psk_id),
        ("psk", "data", "string", identity.psk),
        ("server_url", "data", "string", identity.server_url),
        ("encrypt", "data", "u8", "1" if identity.encrypt else "0"),
        ("upload_period_s", "data", "u32", str(identity.upload_period_s)),
        ("coap_mode", "data", "string", identity.coap_mode),
    ]
    if identity.wire != DEFAULT_WIRE:
        rows.append(("wire", "data", "string", identity.wire))
    # Written only when not the default, so that existing identities' NVS images stay byte-identical.
    if identity.ota_period_s:
        rows.append(("ota_period_s", "data", "u32", str(identity.ota_period_s)))
    if not identity.console:
        rows.append(("console", "data", "u8", "0"))
    if identity.ca_cert is not None:
        if ca_cert_file is None:
            raise ValueError("identity has a CA certificate: pass the file it was written to")
        rows.append(("ca_cert", "file", "string", str(ca_cert_file)))
    if identity.wifi_ssid is not None:
        # the Wi-Fi driver's NVS layout: sta.ssid = {u32 length, 32 bytes}, sta.pswd = 64 bytes, NUL padded
        rows += [
            (WIFI_NAMESPACE, "namespace", "", ""),
            ("sta.ssid", "data", f"blob_sz_fill({WIFI_SSID_MAX};0x00)", identity.wifi_ssid),
            ("sta.pswd", "data", f"blob_fill({WIFI_PASSWORD_MAX};0x00)", identity.wifi_password),
        ]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def build_nvs(identity: DeviceIdentity, out: Path, size: int = NVS_SIZE) -> Path:
    """Generate the NVS partition image of ``identity`` at ``out`` (``size`` bytes); returns ``out``."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # the CSV holds key material: keep it in a private temporary directory, gone afterwards
    with tempfile.TemporaryDirectory(prefix="hil-nvs-") as tmp:
        ca_file = None
        if identity.ca_cert is not None:
            ca_file = Path(tmp) / "ca_cert.pem"
            ca_file.write_text(identity.ca_cert, encoding="ascii")
        csv_path = Path(tmp) / "nvs.csv"
        csv_path.write_text(nvs_csv(identity, ca_file), encoding="utf-8")
        proc = subprocess.run(
            [*NVS_GEN, "generate", str(csv_path), str(out), hex(size)],
            capture_output=True,
            text=True,
            timeout=NVS_GEN_TIMEOUT,
            check=False,
        )
    if proc.returncode != 0 or not out.exists():
        detail = _redact((proc.stderr or proc.stdout).strip()[-400:], identity)
        raise NvsBuildError(
            f"esp-idf-nvs-partition-gen could not build {out} for device "
            f"{identity.device_id} (exit {proc.returncode}): {detail}"
        )
    return out


def _redact(text: str, identity: DeviceIdentity) -> str:
    """Tool output may echo CSV values: strip every secret before it reaches a log."""
    secrets = [identity.hmac_key.hex(), identity.aes_key.hex(), identity.fota_key.hex(), identity.psk]
    for secret in [*secrets, identity.wifi_password] if identity.wifi_password else secrets:
        text = text.replace(secret, "<redacted>")
    return text


def lab_identity(keys: KeyStore, device_id: str = DEFAULT_DEVICE_ID, **overrides: object) -> DeviceIdentity:
    """A TEST ONLY identity: HMAC/AES keys derived from the key store's device master key, the
    store's FOTA AES key, the documented defaults for the rest; ``overrides`` replace fields."""
    hmac_key, aes_key = keys.device_keys(device_id)
    identity = DeviceIdentity(
        device_id=device_id, hmac_key=hmac_key, aes_key=aes_key, fota_key=keys.secret("fota-aes-key")
    )
    return identity.replace(**overrides) if overrides else identity
