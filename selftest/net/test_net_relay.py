"""Recording relay: forwards both ways and writes a pcap that reassembles to exactly what crossed it."""

from __future__ import annotations

import http.client
import shutil
import subprocess
from pathlib import Path

import pytest

from hil.net.capture import CaptureError
from hil.net.flows import flows_from_pcap
from hil.net.relay import RecordingRelay
from hil.net.summary import format_table, summarize_pcap


def test_keep_alive_http_through_relay_is_recorded_as_direct_conversation(tmp_path: Path, http_server) -> None:
    upstream = http_server.server_address[:2]
    big = b"B" * 5000  # several synthesised segments at MSS 1400
    with RecordingRelay(tmp_path / "r.pcap", upstream=upstream, mss=1400) as relay:
        conn = http.client.HTTPConnection(*relay.address, timeout=5)
        for body in (b"first", big):
            conn.request("POST", "/api/upload/data", body=body)
            assert conn.getresponse().read()
        conn.request("GET", "/chunked")
        assert conn.getresponse().read() == b"hello chunked world"
        conn.close()
    stats = relay.stop()
    (flow,) = flows_from_pcap(stats.path)
    assert flow.key.server == upstream and flow.closed
    exchanges = flow.http_exchanges()
    assert [e.request.body for e in exchanges] == [b"first", big, b""]
    assert exchanges[2].response.chunked and exchanges[2].response.body == b"hello chunked world"
    (summary,) = summarize_pcap(stats.path)
    assert summary.kind == "http" and summary.records["POST /api/upload/data -> 200"] == 2
    assert "GET /chunked -> 200" in format_table([summary])


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")
def test_relay_pcap_is_read_by_tshark_as_http(tmp_path: Path, http_server) -> None:
    with RecordingRelay(tmp_path / "t.pcap", upstream=http_server.server_address[:2]) as relay:
        conn = http.client.HTTPConnection(*relay.address, timeout=5)
        conn.request("POST", "/x", body=b"{}")
        conn.getresponse().read()
        conn.close()
    port = http_server.server_address[1]
    out = subprocess.run(["tshark", "-r", str(tmp_path / "t.pcap"), "-d", f"tcp.port=={port},http",
                          "-T", "fields", "-e", "http.request.method", "-e", "http.response.code",
                          "-e", "tcp.analysis.flags"], capture_output=True, text=True, timeout=60, check=True)
    fields = [line.split("\t") for line in out.stdout.splitlines()]
    assert ["POST", "", ""] in fields and ["", "200", ""] in fields
    assert all(f[2] == "" for f in fields)  # no retransmission / lost-segment / bad-seq analysis flags


def test_upstream_down_is_recorded_as_error_not_hang(tmp_path: Path) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()  # bound, not listening: connection refused
        with RecordingRelay(tmp_path / "d.pcap", upstream=dead, connect_timeout=1) as relay:
            with socket.create_connection(relay.address, timeout=5) as client:
                client.settimeout(5)
                assert client.recv(10) == b""  # the relay closes the board's connection
            assert relay.wait_idle(5)
    assert "Connection refused" in relay.errors[0] and relay.stop().packets_written == 0


def test_bad_listen_address_names_it(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="192.0.2.1"):
        RecordingRelay(tmp_path / "x.pcap", upstream=("127.0.0.1", 1), listen=("192.0.2.1", 0)).start()
