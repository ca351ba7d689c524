"""Search runs over reassembled streams: a needle split across segments is found; hits never hold it."""

from __future__ import annotations

import base64
import os
import zlib

import pytest

from hil.net.flows import build_flows
from hil.net.search import contains, search, search_decoded
from hil.net.synth import TcpConversation, udp_frame

KEY = bytes(range(100, 132))


def _flow(payload: bytes, mss: int) -> list:
    conv = TcpConversation(("127.0.0.5", 41000), ("127.0.0.1", 5001), mss=mss)
    return build_flows(conv.handshake() + conv.data("c2s", payload))


def test_needle_split_across_segments_is_found_in_stream_only() -> None:
    payload = b"x" * 30 + b"SECRET-TOKEN" + b"y" * 30
    flows = _flow(payload, mss=36)  # the needle straddles the first segment boundary
    packets_with_needle = [p for p in TcpConversation(("127.0.0.5", 1), ("127.0.0.1", 2), mss=36).data("c2s", payload)
                           if b"SECRET-TOKEN" in bytes(p)]
    assert packets_with_needle == []  # a per-packet grep would miss it
    (hit,) = search(flows, "SECRET-TOKEN")
    assert hit.offset == 30 and hit.direction == "c2s"


def test_hex_forms_and_hit_description_without_secret() -> None:
    flows = _flow(b'{"hmac_key":"' + KEY.hex().encode() + b'"}', mss=10)
    hits = search(flows, KEY, encodings=("raw", "hex"))
    assert [h.encoding for h in hits] == ["hex"]
    assert KEY.hex() not in hits[0].describe() and "offset 13" in hits[0].describe()
    assert not contains(flows, KEY)


def test_udp_datagrams_are_searched_individually() -> None:
    flows = build_flows([udp_frame(("127.0.0.5", 5683), ("127.0.0.1", 9999), b"abc"),
                         udp_frame(("127.0.0.5", 5683), ("127.0.0.1", 9999), b"secretkey123456")])
    (hit,) = search(flows, b"secretkey123456")
    assert hit.datagram == 1 and hit.offset == 0


def test_empty_needle_and_unknown_encoding_are_errors() -> None:
    with pytest.raises(ValueError):
        search([], b"")
    with pytest.raises(ValueError):
        search([], b"x", encodings=("rot13",))


def test_decoded_search_sees_through_base64_and_zlib_but_not_encryption() -> None:
    plain = b'{"readings":[{"register":"Vac1","value":230.12}]}'
    compressed = b'{"payload":"' + base64.b64encode(zlib.compress(plain)) + b'"}'
    flows = _flow(compressed, mss=20)  # the base64 run spans several segments
    assert search(flows, '"value":230.12') == []  # not in the raw stream
    (hit,) = search_decoded(flows, '"value":230.12')
    assert hit.encoding == "base64+zlib" and hit.offset == len(b'{"payload":"')
    assert search_decoded(_flow(b'{"payload":"' + base64.b64encode(plain) + b'"}', mss=20), "230.12")[0].encoding \
        == "base64"
    random_blob = b'{"payload":"' + base64.b64encode(os.urandom(64)) + b'"}'
    assert search_decoded(_flow(random_blob, mss=20), '"value":230.12') == []
    with pytest.raises(ValueError):
        search_decoded(flows, "")
