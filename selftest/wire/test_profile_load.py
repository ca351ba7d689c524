"""Loading wire profiles: the shipped ones, ``hil wire list|show|classify``, and malformed files.

A team writes its own profile, so every mistake in one must be a :class:`ProfileError` that names the
file and the entry at load time — not a ``KeyError`` (or a plain ``ValueError``) from the first request.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from hil.wire.classifier import ProfileError
from hil.wire.outcome import Outcome
from hil.wire.profile import PROFILES_DIR, load_profile, shipped_profiles

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 60
API_TOML = (PROFILES_DIR / "ecowatt-api.toml").read_text(encoding="utf-8")
ROUTES_TABLE = '[routes]\nupload = "/api/upload/data"\nmethod = "POST"\ncontent_type = "application/json"\n'


def _key_spellings(key: bytes) -> list[str]:
    """Every way a describe() could leak *key*: hex in both cases, raw bytes, base64, a bytes repr."""
    return [key.hex(), key.hex().upper(), key.decode("latin-1"), base64.b64encode(key).decode(), repr(key)]


@pytest.mark.parametrize("name", ["ecowatt-api", "ecowatt-fw134"])
def test_shipped_profile_describes_route_scope_and_limits_without_keys(name: str) -> None:
    profile = load_profile(name)
    text = profile.describe()
    assert f"{profile.upload_method} {profile.upload_route}" in text
    assert f"keys: {profile.key_scope} scope" in text
    assert f"body {profile.limits.body_bytes} B" in text
    assert f"rate {profile.limits.rate}/{profile.limits.rate_window_s:g} s" in text
    assert profile.codec.name == profile.codec_name  # the codec resolves (at load, see the table below)
    attempts = profile.device.upload_attempts
    said = f"upload attempts {attempts}, {profile.device.upload_retry_delay_s:g} s apart" if attempts else "not declared"
    assert said in text
    for key in (profile.test_hmac_key, profile.test_aes_key):
        if key is not None:
            leaked = [s for s in _key_spellings(key) if s in text or s in repr(profile)]
            assert not leaked, f"{name}: describe()/repr() shows a key spelling"


def test_the_shipped_profiles_are_the_two_formats_and_differ_where_the_formats_do() -> None:
    assert shipped_profiles() == ["ecowatt-api", "ecowatt-fw134"]
    api, fw134 = load_profile("ecowatt-api"), load_profile("ecowatt-fw134")
    assert (api.upload_route, api.key_scope, api.device_id_in_path) == ("/api/upload/data", "device", False)
    assert (fw134.upload_route, fw134.key_scope, fw134.device_id_in_path) == ("/aggregated/{device_id}", "global", True)
    assert fw134.test_hmac_key is not None and fw134.test_aes_key == fw134.test_hmac_key[:16]
    assert fw134.path_device_id("/aggregated/ESP32_001?x=1") == "ESP32_001"
    assert fw134.path_device_id("/aggregated/ESP32_001/extra") is None
    assert all(p.declares(o) for p in (api, fw134) for o in Outcome)  # both have a reply for every outcome


def _hil(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "hil.cli", "wire", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=CLI_TIMEOUT,
    )


def test_cli_lists_and_shows_the_shipped_profiles() -> None:
    listed = _hil("list")
    assert listed.returncode == 0, listed.stderr
    names = [line.split(":", 1)[0] for line in listed.stdout.decode().splitlines()]
    assert names == shipped_profiles()
    shown = _hil("show", "ecowatt-fw134")
    assert shown.returncode == 0, shown.stderr
    assert b"upload: POST /aggregated/{device_id}" in shown.stdout
    key = load_profile("ecowatt-fw134").test_hmac_key
    assert key is not None and key.hex().encode() not in shown.stdout


def test_cli_classifies_a_reply_and_names_the_option_for_another_protocol(tmp_path: Path) -> None:
    replay = _hil("classify", "ecowatt-fw134", "401", "-", stdin=b'{"success":false,"error":"Replay attack detected!"}')
    assert replay.returncode == 0, replay.stderr
    assert b"refused as replay" in replay.stdout
    html = tmp_path / "404.html"
    html.write_bytes(b"<!doctype html><title>404 Not Found</title>")
    other = _hil("classify", "ecowatt-api", "404", str(html))
    assert other.returncode == 0, other.stderr
    assert b"does not recognise" in other.stdout and b"speaks another protocol" in other.stdout
    assert b"--hil-wire-profile" in other.stdout


def test_cli_refuses_an_unknown_profile_naming_the_shipped_ones() -> None:
    result = _hil("show", "no-such-profile")
    assert result.returncode == 2
    assert b"no-such-profile" in result.stderr and b"ecowatt-fw134" in result.stderr


# (mistake, text replaced in the shipped ecowatt-api profile, its replacement, what the error must name)
MISTAKES = [
    ("missing-routes", ROUTES_TABLE, "", r"missing table \[routes\]"),
    ("unknown-outcome", 'outcome = "replay"', 'outcome = "replayed"', r"responses\[1\]: outcome 'replayed'"),
    ("bad-regex", '"^REPLAY_ATTACK$"', '"^(REPLAY_ATTACK$"', r"responses\[1\]: json.error_code is not a regular"),
    ("absent-and-ruled", "[meta]", 'absent = ["rate_limited"]\n\n[meta]', r"\['rate_limited'\] both declared absent"),
    ("harness-outcome-ruled", 'outcome = "replay"', 'outcome = "server_error"', r"responses\[1\]: server_error is"),
    ("global-scope-no-keys", 'key_scope = "device"', 'key_scope = "global"', r"global key scope needs .*test_hmac_key"),
    ("unknown-key-scope", 'key_scope = "device"', 'key_scope = "fleet"', r"identity.key_scope must be one of"),
    (
        "envelope-unknown-field",
        'mac_covers = ["nonce", "payload"]',
        'mac_covers = ["nonce", "sig"]',
        r"mac_covers.*sig",
    ),
    (
        "learn-without-group",
        'learn_field = "last_nonce"',
        "learn_field = \"error\"\nlearn_pattern = 'last (\\d+)'",
        r"learn_pattern needs a group \(\?P<last>",
    ),
    ("unknown-codec", 'codec = "ecowatt-api"', 'codec = "ecowatt-apii"', r"unknown codec 'ecowatt-apii'.*meta.codec"),
    (
        "codec-module-missing",
        'codec = "ecowatt-api"',
        'codec = "acme_no_such_module:Codec"',
        r"codec 'acme_no_such_module:Codec' cannot be imported",
    ),
    (
        "codec-class-missing",
        'codec = "ecowatt-api"',
        'codec = "hil.wire.codecs.ecowatt_api:NoSuchCodec"',
        r"codec 'hil.wire.codecs.ecowatt_api:NoSuchCodec' cannot be imported",
    ),
    ("status-not-int", "status = 413", 'status = "413"', r"responses\[4\]: status must be an HTTP status"),
    ("not-toml", "[meta]", "[meta", r"cannot read the wire profile"),
    ("attempts-negative", "upload_attempts = 3", "upload_attempts = -1", r"upload_attempts must be a non-negative"),
    ("retry-delay-text", "upload_retry_delay_s = 1", 'upload_retry_delay_s = "1s"', r"upload_retry_delay_s must be"),
]


def _write(tmp_path: Path, old: str, new: str) -> Path:
    assert API_TOML.count(old) >= 1, f"the shipped ecowatt-api profile no longer contains {old!r}: update this table"
    path = tmp_path / "team-profile.toml"
    path.write_text(API_TOML.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("old, new, names", [pytest.param(o, n, e, id=i) for i, o, n, e in MISTAKES])
def test_a_malformed_profile_is_a_profile_error_naming_file_and_entry(
    tmp_path: Path, old: str, new: str, names: str
) -> None:
    path = _write(tmp_path, old, new)
    with pytest.raises(ProfileError, match=names) as caught:
        load_profile(str(path))
    assert str(path) in str(caught.value)


def test_a_team_codec_named_module_colon_class_is_imported(tmp_path: Path) -> None:
    path = _write(tmp_path, 'codec = "ecowatt-api"', 'codec = "hil.wire.codecs.ecowatt_api:EcowattApiCodec"')
    assert type(load_profile(str(path)).codec).__name__ == "EcowattApiCodec"


def test_the_unchanged_base_of_the_table_loads(tmp_path: Path) -> None:
    """The mistakes above are the only thing wrong with their files: the unchanged text loads."""
    profile = load_profile(str(_write(tmp_path, "[meta]", "[meta]")))
    assert (profile.name, profile.source) == ("ecowatt-api", tmp_path / "team-profile.toml")
