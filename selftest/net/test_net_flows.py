"""TCP reassembly: segmented, out of order, retransmitted, overlapping, gaps, keep-alive, port reuse."""

from __future__ import annotations

import random

from hil.net.flows import build_flows
from hil.net.synth import TcpConversation, udp_frame

C, S = ("127.0.0.5", 40000), ("127.0.0.1", 5001)
REQ = b"POST /api/upload/data HTTP/1.1\r\nHost: s\r\nContent-Length: 300\r\n\r\n" + bytes(range(256)) + b"z" * 44
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def _conversation(mss: int = 50, isn: int = 1000, exchanges: int = 1) -> list:
    conv = TcpConversation(C, S, mss=mss, client_isn=isn)
    pkts = conv.handshake()
    for _ in range(exchanges):
        pkts += conv.data("c2s", REQ) + conv.data("s2c", RESP)
    return pkts + conv.close("c2s") + conv.close("s2c")


def test_segmented_request_reassembles_to_one_http_exchange() -> None:
    (flow,) = build_flows(_conversation(mss=7))
    assert flow.key.client == C and flow.stream("c2s") == REQ
    (ex,) = flow.http_exchanges()
    assert ex.request.body == REQ.split(b"\r\n\r\n", 1)[1] and ex.response.status == 200


def test_out_of_order_and_duplicated_segments_are_dropped_not_doubled() -> None:
    pkts = _conversation(mss=20)
    data = pkts[3:-4]
    shuffled = data + random.Random(7).sample(data, 5)  # 5 retransmits
    random.Random(3).shuffle(shuffled)
    (flow,) = build_flows(pkts[:3] + shuffled + pkts[-4:])
    assert flow.stream("c2s") == REQ and flow.stream("s2c") == RESP
    total = flow.streams["c2s"].retransmitted_bytes + flow.streams["s2c"].retransmitted_bytes
    assert total > 0 and flow.bytes_sent("c2s") == len(REQ)


def test_partial_overlap_keeps_only_the_new_tail() -> None:
    conv = TcpConversation(C, S, mss=1000)
    pkts = conv.handshake()
    first = conv.data("c2s", REQ[:100])[0]
    overlap = TcpConversation(C, S, mss=1000)
    overlap.handshake()
    overlapping = overlap.data("c2s", REQ[:150])[0]  # same start seq, 50 new bytes
    rest = conv.data("c2s", REQ[100:])  # conv continues after byte 100
    (flow,) = build_flows(pkts + [first, overlapping] + rest)
    assert flow.stream("c2s") == REQ and flow.streams["c2s"].retransmitted_bytes == 150


def test_missing_segment_is_reported_as_gap() -> None:
    pkts = _conversation(mss=50)
    data = [p for p in pkts if len(bytes(p["TCP"].payload)) > 0]
    lost = data[2]
    (flow,) = build_flows([p for p in pkts if p is not lost])
    assert flow.streams["c2s"].gaps == [(100, 50)] and len(flow.stream("c2s")) == len(REQ) - 50


def test_keep_alive_three_exchanges() -> None:
    (flow,) = build_flows(_conversation(mss=64, exchanges=3))
    exchanges = flow.http_exchanges()
    assert len(exchanges) == 3 and all(ex.response and ex.response.body == b"{}" for ex in exchanges)


def test_sequence_wraparound() -> None:
    (flow,) = build_flows(_conversation(mss=33, isn=2**32 - 100))
    assert flow.stream("c2s") == REQ


def test_capture_started_mid_connection_uses_lowest_sequence() -> None:
    pkts = _conversation(mss=40)[3:]  # no handshake
    (flow,) = build_flows(pkts[5:] + pkts[:5])
    assert flow.stream("c2s") == REQ and flow.key.client == C


def test_port_reuse_after_close_starts_a_new_flow() -> None:
    flows = build_flows(_conversation() + _conversation(isn=777))
    assert len(flows) == 2 and all(f.stream("c2s") == REQ for f in flows)


def test_udp_datagrams_keep_boundaries_and_direction() -> None:
    pkts = [udp_frame(C, S, b"one"), udp_frame(S, C, b"two"), udp_frame(C, S, b"three")]
    (flow,) = build_flows(pkts)
    assert flow.proto == "udp" and [d.payload for d in flow.datagrams] == [b"one", b"two", b"three"]
    assert [d.direction for d in flow.datagrams] == ["c2s", "s2c", "c2s"] and flow.bytes_sent("c2s") == 8


def test_kept_alive_ota_stream_splits_by_content_length_and_a_cut_body_has_no_response() -> None:
    """A device's update connection: GETs whose binary bodies hold text that looks like HTTP, split
    across segments, then a response cut mid-body (the drop fault) and the server's FIN."""
    chunk = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" + bytes(range(256)) * 7
    conv = TcpConversation(C, S, mss=700)
    pkts = conv.handshake()
    for n in range(3):
        pkts += conv.data("c2s", f"GET /api/ota/download/2.0.0/{n} HTTP/1.1\r\nHost: s\r\n\r\n".encode())
        pkts += conv.data("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(chunk) + chunk)
    pkts += conv.data("c2s", b"GET /api/ota/download/2.0.0/3 HTTP/1.1\r\nHost: s\r\n\r\n")
    pkts += conv.data("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(chunk) + chunk[:900])
    (flow,) = build_flows(pkts + conv.close("s2c") + conv.close("c2s"))
    exchanges = flow.http_exchanges()
    assert [ex.request.target[-1] for ex in exchanges] == ["0", "1", "2", "3"]
    assert [ex.response.body for ex in exchanges[:3]] == [chunk] * 3 and exchanges[3].response is None


def test_requests_of_interleaved_kept_alive_connections_are_ordered_by_their_own_time() -> None:
    clock = iter(range(1, 100))
    a = TcpConversation(C, S, clock=lambda: float(next(clock)))
    b = TcpConversation(("127.0.0.5", 40001), S, clock=a.clock)
    get = "GET /{} HTTP/1.1\r\nHost: s\r\n\r\n".format
    pkts = a.handshake() + a.data("c2s", get("a1").encode()) + b.handshake() + b.data("c2s", get("b1").encode())
    pkts += a.data("c2s", get("a2").encode())
    timed = sorted((f.time_of("c2s", r.offset), r.target) for f in build_flows(pkts) for r in f.http_requests())
    assert [target for _, target in timed] == ["/a1", "/b1", "/a2"]
    (udp,) = build_flows([udp_frame(C, S, b"x", when=7.0)])
    assert udp.time_of("c2s", 0) == 7.0
