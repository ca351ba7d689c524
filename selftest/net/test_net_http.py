"""HTTP/1.1 framing: Content-Length, chunked, keep-alive, EOF-delimited, incomplete input."""

from __future__ import annotations

import pytest

from hil.net.http import HttpParseError, build_request, build_response, parse_message, parse_stream

REQ = b"POST /api/upload/data HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n"


def test_content_length_request_parses_and_keeps_raw_bytes() -> None:
    msg, end = parse_message(REQ, is_response=False)
    assert (msg.method, msg.target, msg.body, end) == ("POST", "/api/upload/data", b"hello", len(REQ))
    assert msg.raw == REQ and msg.header("content-length") == "5"


def test_incomplete_body_and_headers_return_none() -> None:
    assert parse_message(REQ[:-1], is_response=False) is None
    assert parse_message(REQ[:20], is_response=False) is None


def test_chunked_with_extension_and_trailer() -> None:
    msg, end = parse_message(CHUNKED, is_response=True)
    assert msg.body == b"hello world" and msg.chunked and end == len(CHUNKED) and msg.status == 200
    assert parse_message(CHUNKED[:-2], is_response=True) is None


def test_keep_alive_stream_splits_into_messages_with_offsets() -> None:
    get = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    msgs, rest = parse_stream(REQ + get + REQ, is_response=False)
    assert [m.target for m in msgs] == ["/api/upload/data", "/a", "/api/upload/data"]
    assert [m.offset for m in msgs] == [0, len(REQ), len(REQ) + len(get)] and rest == b""


def test_truncated_tail_is_returned_not_dropped() -> None:
    msgs, rest = parse_stream(REQ + REQ[:30], is_response=False)
    assert len(msgs) == 1 and rest == REQ[:30]


def test_response_without_length_ends_at_eof_only() -> None:
    data = b"HTTP/1.0 200 OK\r\n\r\nuntil close"
    assert parse_message(data, is_response=True) is None
    msg, _ = parse_message(data, is_response=True, eof=True)
    assert msg.body == b"until close"


def test_head_and_204_responses_have_no_body() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    msg, end = parse_message(data, is_response=True, request_method="HEAD")
    assert msg.body == b"" and end == len(data)
    msgs, _ = parse_stream(b"HTTP/1.1 204 No Content\r\n\r\n" * 2, is_response=True)
    assert len(msgs) == 2


@pytest.mark.parametrize("data", [b"\x16\x03\x01\x00\x10hello\r\n\r\n", b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"])
def test_non_http_raises(data: bytes) -> None:
    with pytest.raises(HttpParseError):
        parse_message(data, is_response=data.startswith(b"HTTP"))


def test_builders_roundtrip_and_with_body_fixes_length() -> None:
    req = build_request("POST", "/x", b"abc", host="h")
    assert parse_message(req.raw, is_response=False)[0].body == b"abc"
    resp = parse_message(CHUNKED, is_response=True)[0].with_body(b"xyz!")
    again, _ = parse_message(resp.raw, is_response=True)
    assert again.body == b"xyz!" and again.header("Transfer-Encoding") is None
    assert build_response(403, "Forbidden", b"{}").status == 403
