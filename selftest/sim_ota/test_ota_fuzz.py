"""Malformed check replies and manifests (hypothesis): the device never lets an exception escape,
never installs, and leaves the secondary slot erased."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.sim.firmware.ota import ota_check
from hil.sim.firmware.ota_client import parse_version
from sim_ota.test_ota_update import erased

VERIFIED = ("version", "file_size", "chunk_size", "total_chunks", "sha256_hash", "rsa_signature", "aes_iv")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class Target:
    """A device running 1.0.0 and a server offering the small 4.0.0 package (short repr for hypothesis)."""

    server: Any = field(repr=False)
    rt: Any = field(repr=False)
    device: Any = field(repr=False)
    manifest: dict = field(repr=False)


@pytest.fixture
def fuzz_target(make_ota_server, make_ota_device, firmware_dirs) -> Target:
    server = make_ota_server("small")
    rt, device = make_ota_device(server.url)
    return Target(server, rt, device, json.loads((firmware_dirs["small"] / "4.0.0" / "manifest.json").read_text()))


@st.composite
def broken_manifests(draw: st.DrawFn, original: dict) -> bytes:
    """A manifest with at least one verified field changed or removed, or not a manifest at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
    doc = dict(original)
    for name in draw(st.lists(st.sampled_from(VERIFIED), min_size=1, max_size=3, unique=True)):
        if draw(st.booleans()):
            del doc[name]
            continue
        near = {"file_size": st.integers(0, 9000), "chunk_size": st.integers(0, 9000),
                "total_chunks": st.integers(0, 5), "version": st.sampled_from(["4.0.1", "4.0", "x", "99999.0.0"])}
        # the change must be a change: a "near" draw equal to the original would leave a valid manifest
        doc[name] = draw((near.get(name, st.text("0123456789abcdef", max_size=600)) | JSON_VALUES)
                         .filter(lambda v, old=original[name]: v != old))
    return json.dumps(doc).encode()


@given(data=st.data())
@FAST
def test_malformed_manifest_fails_cleanly(fuzz_target, data):
    body = data.draw(broken_manifests(fuzz_target.manifest))
    fuzz_target.server.tamper.replies["/api/ota/manifest/4.0.0"] = ("200 OK", body)
    outcome = ota_check(fuzz_target.device)  # any exception, Reboot included, fails the test
    assert outcome in ("DOWNLOAD_FAILED", "HASH_MISMATCH", "SIGNATURE_INVALID"), outcome
    assert erased(fuzz_target.rt) and fuzz_target.device.store.ota_attempt() is None


@given(body=st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps(v).encode()) | st.fixed_dictionaries(
    {"update_available": st.just(True), "firmware_version": JSON_VALUES | st.just("9.0.0"),
     "file_size": JSON_VALUES, "manifest_url": JSON_VALUES | st.sampled_from(["//evil/x", "/a/../b", "x"])})
    .map(lambda d: json.dumps(d).encode()))
@FAST
def test_malformed_check_reply_is_a_logged_check_failure(fuzz_target, body):
    fuzz_target.server.tamper.replies["/api/ota/check/EW-0001"] = ("200 OK", body)
    assert ota_check(fuzz_target.device) in ("error", "none", "DOWNLOAD_FAILED")
    assert erased(fuzz_target.rt)


def test_versions_compare_numerically():
    assert parse_version("10.0.0") > parse_version("9.9.9") > parse_version("1.10.0") > parse_version("1.9.0")
    assert parse_version("1.0") is None and parse_version("v1.0.0") is None and parse_version(7) is None
