"""Per-flow summaries for the report: endpoints, bytes, packets, and what the payload is.

Plain data (:class:`FlowSummary`, ``as_dict``) for the report plugin and a fixed-width text table
for a report extra or a terminal. Payload contents never appear, only types and counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hil.net.flows import Flow, flows_from_pcap
from hil.net.http import HttpParseError
from hil.net.records import RecordParseError, looks_like_dtls, looks_like_tls, parse_dtls, parse_tls, type_counts


@dataclass
class FlowSummary:
    """One flow as the report shows it."""

    proto: str
    client: str
    server: str
    kind: str  # http | tls | dtls | tcp | udp
    packets: int
    bytes_c2s: int
    bytes_s2c: int
    duration_s: float
    records: dict[str, int] = field(default_factory=dict)  # TLS/DTLS record types, HTTP "GET /x -> 200"
    notes: list[str] = field(default_factory=list)  # retransmits, gaps, RST, truncation

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def summarize_flow(flow: Flow) -> FlowSummary:
    """Classify *flow* (HTTP, TLS, DTLS, or plain TCP/UDP) and count what it carried."""
    key = flow.key
    summary = FlowSummary(
        proto=flow.proto,
        client=f"{key.client[0]}:{key.client[1]}",
        server=f"{key.server[0]}:{key.server[1]}",
        kind=flow.proto,
        packets=flow.packets,
        bytes_c2s=flow.bytes_sent("c2s"),
        bytes_s2c=flow.bytes_sent("s2c"),
        duration_s=round(flow.last_time - flow.first_time, 6),
    )
    if flow.proto == "tcp":
        _tcp_notes(flow, summary)
        _classify_tcp(flow, summary)
    else:
        _classify_udp(flow, summary)
    return summary


def summarize(flows: Iterable[Flow]) -> list[FlowSummary]:
    """Summaries of all *flows*, in capture order."""
    return [summarize_flow(f) for f in flows]


def summarize_pcap(path: str | Path) -> list[FlowSummary]:
    """Summaries of every flow in a pcap file."""
    return summarize(flows_from_pcap(path))


def format_table(summaries: list[FlowSummary]) -> str:
    """A fixed-width text table, one flow per line plus its record counts."""
    if not summaries:
        return "(no TCP/UDP flows captured)"
    lines = [f"{'proto':<5} {'kind':<5} {'client':<22} {'server':<22} {'pkts':>6} {'c->s':>9} {'s->c':>9} {'secs':>8}"]
    for s in summaries:
        lines.append(
            f"{s.proto:<5} {s.kind:<5} {s.client:<22} {s.server:<22} {s.packets:>6} "
            f"{s.bytes_c2s:>9} {s.bytes_s2c:>9} {s.duration_s:>8.3f}"
        )
        if s.records:
            lines.append("      " + ", ".join(f"{name} x{n}" for name, n in s.records.items()))
        if s.notes:
            lines.append("      note: " + "; ".join(s.notes))
    return "\n".join(lines)


def _tcp_notes(flow: Flow, summary: FlowSummary) -> None:
    for direction, stream in flow.streams.items():
        if stream.retransmitted_bytes:
            summary.notes.append(f"{direction}: {stream.retransmitted_bytes} retransmitted bytes dropped")
        if stream.gaps:
            missing = sum(n for _, n in stream.gaps)
            summary.notes.append(f"{direction}: {len(stream.gaps)} gap(s), {missing} bytes not captured")
    if "RST" in flow.flags_seen:
        summary.notes.append("connection reset")


def _classify_tcp(flow: Flow, summary: FlowSummary) -> None:
    c2s, s2c = flow.stream("c2s"), flow.stream("s2c")
    if looks_like_tls(c2s) or looks_like_tls(s2c):
        summary.kind = "tls"
        for direction, data in (("c2s", c2s), ("s2c", s2c)):
            records, trailing = parse_tls(data, strict=False)
            for name, n in type_counts(records).items():
                summary.records[f"{direction} {name}"] = n
            if trailing:
                summary.notes.append(f"{direction}: {trailing} bytes of an incomplete TLS record")
        return
    if not c2s:
        return
    try:
        exchanges = flow.http_exchanges()
    except HttpParseError:
        return  # not HTTP: stays "tcp"
    if not exchanges:
        return
    summary.kind = "http"
    for ex in exchanges:
        status = ex.response.status if ex.response else "no response"
        label = f"{ex.request.method} {ex.request.target} -> {status}"
        summary.records[label] = summary.records.get(label, 0) + 1


def _classify_udp(flow: Flow, summary: FlowSummary) -> None:
    payloads = [(d.direction, d.payload) for d in flow.datagrams]
    if not payloads or not all(looks_like_dtls(p) for _, p in payloads):
        return
    summary.kind = "dtls"
    for direction, payload in payloads:
        try:
            records = parse_dtls(payload)
        except RecordParseError as exc:
            summary.notes.append(f"{direction}: {exc}")
            continue
        for name, n in type_counts(records).items():
            key = f"{direction} {name}"
            summary.records[key] = summary.records.get(key, 0) + n
