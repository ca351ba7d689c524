"""Per-flow summaries classify HTTP, TLS, DTLS and plain flows and report reassembly problems."""

from __future__ import annotations

from hil.net.flows import build_flows
from hil.net.summary import format_table, summarize
from hil.net.synth import TcpConversation, udp_frame

C, S = ("127.0.0.5", 40001), ("127.0.0.1", 443)


def _tls_flow() -> list:
    conv = TcpConversation(C, S, mss=100)
    hello = b"\x16\x03\x01\x00\x05\x01abcd"
    app = b"\x17\x03\x03\x00\x03xyz"
    return conv.handshake() + conv.data("c2s", hello + app + app[:4]) + conv.data("s2c", b"\x15\x03\x03\x00\x02\x02\x28")


def test_tls_flow_counts_records_and_notes_incomplete_record() -> None:
    (s,) = summarize(build_flows(_tls_flow()))
    assert s.kind == "tls" and s.records == {"c2s client_hello": 1, "c2s application_data": 1, "s2c alert": 1}
    assert s.notes == ["c2s: 4 bytes of an incomplete TLS record"]


def test_dtls_and_plain_udp_and_as_dict() -> None:
    dtls = b"\x17\xfe\xfd\x00\x01" + b"\x00" * 5 + b"\x07\x00\x02hi"
    flows = build_flows([udp_frame(C, ("127.0.0.1", 5684), dtls), udp_frame(C, ("127.0.0.1", 5683), b"\x40\x01")])
    dtls_s, coap_s = summarize(flows)
    assert dtls_s.kind == "dtls" and dtls_s.records == {"c2s application_data": 1}
    assert coap_s.kind == "udp" and coap_s.as_dict()["bytes_c2s"] == 2


def test_http_summary_and_retransmit_note_in_table() -> None:
    conv = TcpConversation(C, ("127.0.0.1", 5001), mss=20)
    data = conv.data("c2s", b"GET /api/ota/check/EW-1?version=1.0.0 HTTP/1.1\r\nHost: s\r\n\r\n")
    pkts = conv.handshake() + data + data[:1] + conv.data("s2c", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    (s,) = summarize(build_flows(pkts))
    assert s.kind == "http" and s.records == {"GET /api/ota/check/EW-1?version=1.0.0 -> 404": 1}
    table = format_table([s])
    assert "c2s: 20 retransmitted bytes dropped" in table and "127.0.0.5:40001" in table
    assert format_table([]) == "(no TCP/UDP flows captured)"
