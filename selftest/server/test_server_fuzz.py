"""Hypothesis fuzz of POST /api/upload/data: no input yields a 5xx, no forged packet is accepted."""

from __future__ import annotations

import itertools
import json
from typing import Any, Iterator

import pytest
from helpers_server import DEVICES, UPLOAD, doc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.protocol import parse_packet, verify_mac
from hil.protocol.errors import ProtocolError

FIELDS = ("device_id", "nonce", "payload", "mac", "compressed", "compression_type", "encrypted", "timestamp")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
field_values = st.one_of(
    json_values, st.sampled_from(["EW-0001", "EW-0002", "EW-9999", "0" * 64, "AAAA", "eJwDAAAAAAE=", "zlib"]),
    st.integers(min_value=0, max_value=2**32 - 1), st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64))


@st.composite
def mutated_packets(draw: st.DrawFn, nonces: Iterator[int]) -> bytes:
    """A valid packet with a fresh nonce, with some fields replaced, removed or added.

    Fresh nonces keep the fuzz past the replay check; a random one would burn the nonce space early.
    """
    base = doc(next(nonces), draw(st.sampled_from(sorted(DEVICES))))
    for name in draw(st.lists(st.sampled_from(FIELDS + ("extra",)), max_size=4, unique=True)):
        if draw(st.booleans()):
            base[name] = draw(field_values)
        else:
            base.pop(name, None)
    return json.dumps(base).encode()


def bodies(nonces: Iterator[int]) -> st.SearchStrategy[bytes]:
    """Mutated valid packets, arbitrary bytes, arbitrary JSON."""
    return st.one_of(mutated_packets(nonces), st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()))


def authentic(body: bytes) -> bool:
    """True iff the body carries a MAC the registered key really produced."""
    try:
        packet = parse_packet(body)
    except ProtocolError:
        return False
    keys = DEVICES.get(packet.device_id)
    return keys is not None and verify_mac(keys.hmac_key, packet)


def fuzz_upload_endpoint(client: Any, max_examples: int) -> None:
    """Post generated bodies; fail on any 5xx or any accepted packet whose MAC is not authentic."""

    @settings(max_examples=max_examples, deadline=None, database=None, report_multiple_bugs=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies(itertools.count(1)))
    def check(body: bytes) -> None:
        reply = client.post(UPLOAD, data=body, content_type="application/json")
        assert reply.status_code < 500, (body, reply.get_data())
        reply_json: Any = reply.get_json()
        assert reply_json["status"] in ("success", "error")
        if reply.status_code == 200:
            assert authentic(body), f"forged packet accepted: {body!r}"

    check()


def test_upload_endpoint_fuzz(make_app) -> None:
    fuzz_upload_endpoint(make_app(rate_limit=0).test_client(), 400)  # no 429 wall: reach the MAC and beyond


@pytest.mark.parametrize("defect", ["malformed-json-500", "missing-fields-skip-checks"])
def test_the_fuzz_catches_defective_servers(make_app, defect: str) -> None:
    client = make_app(rate_limit=0, defects=(defect,)).test_client()
    with pytest.raises(AssertionError):
        fuzz_upload_endpoint(client, 400)


def test_fuzz_body_limit_and_rate_limit_paths(make_app) -> None:
    client = make_app(rate_limit=3).test_client()

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=mutated_packets(itertools.count(1)), pad=st.integers(min_value=0, max_value=20_000))
    def check(body: bytes, pad: int) -> None:
        padded = body[:-1] + b',"pad":"' + b"x" * pad + b'"}'
        reply = client.post(UPLOAD, data=padded, content_type="application/json")
        assert reply.status_code < 500
        if len(padded) > 16 * 1024:
            assert reply.status_code == 413
        if reply.status_code == 200:
            assert authentic(padded)

    check()
