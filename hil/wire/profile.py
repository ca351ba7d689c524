"""Wire profiles: a format's upload and OTA protocol as data (TOML), plus its named codec.

A profile says where uploads go (``[routes]``, the device id in the path or the body), what the
envelope holds and which fields its MAC covers (``[envelope]``: this drives the forgery table), the
key scope and nonce rules (``[identity]``, ``[nonce]``), the declared limits (``[limits]``), how to
read the server's replies (``[[responses]]`` → :class:`~hil.wire.outcome.Outcome`), what the
reference server answers when it speaks the profile (``[server]``), the OTA steps (``[ota]``) and the
device contract (``[device]``: how uploads and OTA checks are triggered, which log profile).

Shipped profiles live in ``hil/wire/profiles/NAME.toml``; ``--hil-wire-profile`` takes a name or a
path to a team's own file. ``hil wire show NAME`` prints one (:meth:`WireProfile.describe`).
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from hil.protocol.errors import ErrorCode, ProtocolError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomllib is tomli, adopted into the standard library in 3.11
    import tomli as tomllib

from hil.protocol.jsonio import load_json_object
from hil.protocol.readings import Readings
from hil.protocol.upload import UploadPacket, check_readings_owner
from hil.wire.classifier import Classifier, ProfileError
from hil.wire.codec import UploadCodec, codec_named, macs_equal
from hil.wire.outcome import Outcome, Verdict

PROFILES_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "ecowatt-api"
KEY_SCOPES = ("device", "global")
TRIGGERS = ("console", "timer")


@dataclass(frozen=True)
class Limits:
    """Declared limits: request body bytes, uploads per window per device (0: none declared)."""

    body_bytes: int
    rate: int
    rate_window_s: float


@dataclass(frozen=True)
class NonceRules:
    """Where nonces start and how the harness learns a server's last accepted nonce.

    ``provisioned``: the NVS default; ``boot_floor``: the firmware raises a lower stored nonce to this
    at boot (0: none); ``learn_field``/``learn_pattern``: where a replay refusal of a signed probe with
    nonce ``probe`` states the last accepted nonce (a JSON field, or a regex with group ``last`` over
    that field's text).
    """

    provisioned: int
    boot_floor: int
    maximum: int
    probe: int
    learn_field: str
    learn_pattern: str | None

    def start(self, provisioned: int) -> int:
        """The last nonce a device provisioned with *provisioned* has after boot (its next upload uses +1)."""
        return max(provisioned, self.boot_floor)

    def learn(self, verdict: Verdict) -> int | None:
        """The last accepted nonce a replay refusal states, or None."""
        value = verdict.fields.get(self.learn_field)
        if self.learn_pattern is None:
            return value if isinstance(value, int) and not isinstance(value, bool) else None
        found = re.search(self.learn_pattern, value) if isinstance(value, str) else None
        return int(found.group("last")) if found else None


@dataclass(frozen=True)
class DeviceContract:
    """How scenarios make the firmware act: ``console`` commands, or wait for its own ``timer``s."""

    trigger: str
    log_profile: str
    upload_period_s: float
    ota_period_s: float
    # one upload cycle against a failing server (a 5xx, no connection): attempts in all and the device
    # time between them, as the firmware documents them; None when the profile does not say
    upload_attempts: int | None = None
    upload_retry_delay_s: float | None = None


@dataclass(frozen=True)
class WireProfile:
    """One loaded profile (see the module docstring for its sections)."""

    name: str
    description: str
    source: Path
    codec_name: str
    upload_route: str
    upload_method: str
    content_type: str
    key_scope: str
    default_device_id: str
    test_hmac_key: bytes | None = field(repr=False)
    test_aes_key: bytes | None = field(repr=False)
    envelope_fields: tuple[str, ...]
    mac_covers: tuple[str, ...]
    required: tuple[str, ...]
    flags: tuple[str, ...]
    compresses: bool  # the device compresses the plaintext at the envelope level
    limits: Limits
    nonce: NonceRules
    classifier: Classifier
    server: Mapping[str, Any]
    ota: Mapping[str, Any]
    device: DeviceContract

    @cached_property
    def codec(self) -> UploadCodec:
        """The named codec functions (resolved on first use)."""
        return _resolve_codec(self.codec_name, source=str(self.source))

    @property
    def device_id_in_path(self) -> bool:
        """True when the device id travels in the upload URL rather than the body."""
        return "{device_id}" in self.upload_route

    def ota_target(self, step: str, **values: object) -> str:
        """The request target of OTA *step* (``check``, ``chunk``, ...) in ``[ota]`` with *values* filled
        in, e.g. ``ota_target("chunk", device_id=.., version="2.0.0", index=5)``."""
        template = self.ota.get(step)
        if not isinstance(template, str):
            raise KeyError(f"wire profile {self.name} ({self.source}) has no [ota] {step} step")
        return template.split(" ", 1)[-1].format(**values)

    def upload_path(self, device_id: str) -> str:
        """The upload URL path for *device_id*."""
        return self.upload_route.replace("{device_id}", device_id)

    def path_device_id(self, path: str) -> str | None:
        """The device id in an upload *path* (None when the path is not this profile's upload route)."""
        target = path.split("?", 1)[0]
        if not self.device_id_in_path:
            return None
        head, tail = self.upload_route.split("{device_id}", 1)
        found = re.fullmatch(re.escape(head) + r"([^/]+)" + re.escape(tail), target)
        return found.group(1) if found else None

    def is_upload_path(self, path: str) -> bool:
        """True for a request target that is this profile's upload route (any device id)."""
        target = path.split("?", 1)[0]
        return self.path_device_id(target) is not None if self.device_id_in_path else target == self.upload_route

    # ---- packets ----------------------------------------------------------------------------

    def body(self, packet: UploadPacket | Mapping[str, Any], *, remove: tuple[str, ...] = (), **fields: Any) -> bytes:
        """The JSON body of *packet* with *fields* overridden (``None`` → null) and *remove* left out."""
        doc = dict(self.codec.envelope(packet) if isinstance(packet, UploadPacket) else packet)
        doc.update(fields)
        for name in remove:
            doc.pop(name, None)
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")

    def parse_request(self, path: str, body: bytes) -> UploadPacket:
        """The upload packet in a request to *path* (``ProtocolError`` when it is not one)."""
        doc = load_json_object(body, what="upload body")
        return self.codec.parse(doc, path_device_id=self.path_device_id(path))

    def build(self, readings: Readings, *, nonce: int, hmac_key: bytes, aes_key: bytes | None = None) -> UploadPacket:
        """The packet a device of this format sends for *readings* (encrypted iff *aes_key*)."""
        plaintext = self.codec.encode_plaintext(readings)
        return self.codec.seal(
            readings.device_id,
            nonce,
            plaintext,
            hmac_key=hmac_key,
            aes_key=aes_key,
            compressed=self.compresses,
            timestamp=readings.timestamp,
        )

    def verify_mac(self, packet: UploadPacket, *, hmac_key: bytes, aes_key: bytes | None) -> bool:
        """Constant-time MAC check of *packet* under these keys."""
        return macs_equal(self.codec.expected_mac(packet, hmac_key=hmac_key, aes_key=aes_key), packet.mac)

    def read(self, packet: UploadPacket, *, aes_key: bytes | None) -> Readings:
        """Unwrap and decode the payload (no MAC check, no owner check)."""
        return self.codec.decode_plaintext(self.codec.unwrap(packet, aes_key=aes_key))

    def open(self, packet: UploadPacket, *, hmac_key: bytes, aes_key: bytes | None) -> Readings:
        """Verify the MAC, unwrap and decode, and check the plaintext names the packet's device."""
        if not self.verify_mac(packet, hmac_key=hmac_key, aes_key=aes_key):
            raise ProtocolError(
                ErrorCode.INVALID_HMAC, f"MAC of {packet.device_id} nonce {packet.nonce} does not verify"
            )
        readings = self.read(packet, aes_key=aes_key)
        check_readings_owner(packet, readings)
        return readings

    def classify(self, status: int | None, body: bytes) -> Verdict:
        """The outcome of an upload reply under this profile."""
        return self.classifier.classify(status, body)

    def declares(self, outcome: Outcome) -> bool:
        """True when this protocol has a reply for *outcome*."""
        return self.classifier.declares(outcome)

    def describe(self) -> str:
        """The profile as a reviewer reads it (no key material)."""
        lines = [
            f"wire profile {self.name}: {self.description}",
            f"  file: {self.source}",
            f"  codec: {self.codec_name}",
            f"  upload: {self.upload_method} {self.upload_route} ({self.content_type})",
            f"  envelope: {', '.join(self.envelope_fields)}; MAC covers {', '.join(self.mac_covers)}; "
            f"outside the MAC: {', '.join(self.flags) or '-'}",
            f"  keys: {self.key_scope} scope; default device {self.default_device_id}",
            f"  nonce: provisioned {self.nonce.provisioned}, boot floor {self.nonce.boot_floor or '-'}, "
            f"max {self.nonce.maximum}; learnt from a replay refusal's {self.nonce.learn_field}",
            f"  limits: body {self.limits.body_bytes} B, rate "
            + (f"{self.limits.rate}/{self.limits.rate_window_s:g} s" if self.limits.rate else "none declared"),
            f"  device: triggered by {self.device.trigger}, log profile {self.device.log_profile}; upload "
            + (
                f"attempts {self.device.upload_attempts}, {self.device.upload_retry_delay_s or 0:g} s apart"
                if self.device.upload_attempts
                else "retries not declared"
            ),
            "  responses:",
        ]
        lines += [f"    {line}" for line in self.classifier.describe()]
        return "\n".join(lines)


@functools.cache
def default_profile() -> WireProfile:
    """The ``ecowatt-api`` profile (read once per process: it is a shipped, immutable file)."""
    return load_profile(DEFAULT_PROFILE)


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped in :data:`PROFILES_DIR`."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def resolve_profile_path(name_or_path: str, *, rootdir: Path | None = None) -> Path:
    """The file of a profile name (shipped) or path (a team's own); ProfileError saying what exists."""
    if name_or_path in shipped_profiles():
        return PROFILES_DIR / f"{name_or_path}.toml"
    candidate = Path(name_or_path)
    if not candidate.is_absolute() and rootdir is not None:
        candidate = rootdir / candidate
    if candidate.suffix == ".toml" and candidate.is_file():
        return candidate
    raise ProfileError(
        f"wire profile {name_or_path!r}: neither a shipped profile ({', '.join(shipped_profiles())}) nor a "
        ".toml file; give --hil-wire-profile NAME or a path to your profile (README 'Testing your own server')"
    )


def load_profile(name_or_path: str = DEFAULT_PROFILE, *, rootdir: Path | None = None) -> WireProfile:
    """Load and validate a profile (``ProfileError`` naming the file and the entry)."""
    path = resolve_profile_path(name_or_path, rootdir=rootdir)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read the wire profile ({exc})") from None
    return _from_data(data, path)


def _from_data(data: Mapping[str, Any], path: Path) -> WireProfile:
    src = str(path)
    meta, routes, ident = _table(data, "meta", src), _table(data, "routes", src), _table(data, "identity", src)
    env, limits, nonce = _table(data, "envelope", src), _table(data, "limits", src), _table(data, "nonce", src)
    device = _table(data, "device", src)
    scope = _str(ident, "key_scope", src)
    if scope not in KEY_SCOPES:
        raise ProfileError(f"{src}: identity.key_scope must be one of {', '.join(KEY_SCOPES)}")
    key_hex, aes_hex = ident.get("test_hmac_key"), ident.get("test_aes_key")
    if scope == "global" and not (isinstance(key_hex, str) and isinstance(aes_hex, str)):
        raise ProfileError(
            f"{src}: a global key scope needs identity.test_hmac_key and test_aes_key (hex, TEST ONLY keys)"
        )
    trigger = device.get("trigger", "console")
    if trigger not in TRIGGERS:
        raise ProfileError(f"{src}: device.trigger must be one of {', '.join(TRIGGERS)}")
    fields = tuple(_list(env, "fields", src))
    for group in ("mac_covers", "required", "flags"):
        unknown = set(_list(env, group, src)) - set(fields) - {"device_id"}
        if unknown:
            raise ProfileError(f"{src}: envelope.{group} names {sorted(unknown)}, not in envelope.fields")
    profile = WireProfile(
        name=_str(meta, "name", src),
        description=_str(meta, "description", src),
        source=path,
        codec_name=_str(meta, "codec", src),
        upload_route=_str(routes, "upload", src),
        upload_method=routes.get("method", "POST"),
        content_type=routes.get("content_type", "application/json"),
        key_scope=scope,
        default_device_id=_str(ident, "default_device_id", src),
        test_hmac_key=bytes.fromhex(key_hex) if isinstance(key_hex, str) else None,
        test_aes_key=bytes.fromhex(aes_hex) if isinstance(aes_hex, str) else None,
        envelope_fields=fields,
        mac_covers=tuple(_list(env, "mac_covers", src)),
        required=tuple(_list(env, "required", src)),
        flags=tuple(_list(env, "flags", src)),
        compresses=bool(env.get("compress", False)),
        limits=Limits(
            int(_number(limits, "body_bytes", 0, src)),
            int(_number(limits, "rate", 0, src)),
            _number(limits, "rate_window_s", 60, src),
        ),
        nonce=NonceRules(
            provisioned=int(_number(nonce, "provisioned", 0, src)),
            boot_floor=int(_number(nonce, "boot_floor", 0, src)),
            maximum=int(_number(nonce, "max", 2**32 - 1, src)),
            probe=int(_number(nonce, "probe", 0, src)),
            learn_field=_str(nonce, "learn_field", src),
            learn_pattern=nonce.get("learn_pattern"),
        ),
        classifier=Classifier.from_data(data.get("responses", []), data.get("absent", []), source=src),
        server=data.get("server", {}),
        ota=data.get("ota", {}),
        device=DeviceContract(
            trigger=trigger,
            log_profile=device.get("log_profile", "ecowatt-idf"),
            upload_period_s=float(device.get("upload_period_s", 0)),
            ota_period_s=float(device.get("ota_period_s", 0)),
            upload_attempts=int(_number(device, "upload_attempts", 0, src)) or None,
            upload_retry_delay_s=_number(device, "upload_retry_delay_s", 0, src)
            if "upload_retry_delay_s" in device
            else None,
        ),
    )
    if profile.nonce.learn_pattern is not None and "(?P<last>" not in profile.nonce.learn_pattern:
        raise ProfileError(f"{src}: nonce.learn_pattern needs a group (?P<last>...)")
    _ = profile.codec  # resolved now: an unknown or unimportable codec is an error of this file, not of a request
    return profile


def _resolve_codec(name: str, *, source: str) -> UploadCodec:
    if ":" not in name:
        try:
            return codec_named(name, source=source)
        except ValueError as exc:
            raise ProfileError(f'{exc} (meta.codec; a team\'s own codec is "package.module:ClassName")') from None
    module, _, attr = name.partition(":")  # a team's codec: "package.module:ClassName"
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ProfileError(f"{source}: codec {name!r} cannot be imported ({exc})") from None
    return factory()


def _table(data: Mapping[str, Any], name: str, src: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, Mapping):
        raise ProfileError(f"{src}: missing table [{name}]")
    return value


def _str(table: Mapping[str, Any], key: str, src: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{src}: {key} must be a non-empty string")
    return value


def _number(table: Mapping[str, Any], key: str, default: float, src: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ProfileError(f"{src}: {key} must be a non-negative number, not {value!r}")
    return value


def _list(table: Mapping[str, Any], key: str, src: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"{src}: {key} must be a list of field names")
    return value
