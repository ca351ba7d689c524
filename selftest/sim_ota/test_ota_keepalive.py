"""The update over one kept-alive connection (``hil.sim.firmware.net.HttpSession``): check, manifest,
every chunk and the status reports share one TCP connection; a drop, a wrong chunk or a timeout
makes the next attempt open a new one; and the capture of an update (relay or sniffer) splits into
the same requests for our parser as for tshark."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from hil.net.fallback import open_capture
from hil.net.flows import flows_from_pcap
from hil.sim.firmware.ota import ota_check
from hil.sim.runtime import Reboot
from sim_ota.test_ota_update import event

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sniffing needs CAP_NET_RAW (run as root in CI)")


def _connections(server) -> tuple[int, int]:
    """(connections accepted, requests answered) once the device closed every connection."""
    tracker = server.handle.connections
    assert tracker.wait_closed(5), f"{tracker.open} connection(s) still open after the update"
    return tracker.accepted, tracker.requests


def _chunks(rt) -> int:
    return 1 + max(f["chunk"] for name, f in rt.checkpoints if name == "ota.chunk_written")


@pytest.mark.parametrize("tls", [None, "real"], ids=["http", "https"])
def test_the_whole_update_goes_over_one_connection(make_ota_server, make_ota_device, tls) -> None:
    server = make_ota_server(tls=tls)
    rt, device = make_ota_device(server.url)
    with pytest.raises(Reboot):
        ota_check(device)
    # check + manifest + every chunk + every status report, on one connection closed before the reboot
    assert _connections(server) == (1, 2 + _chunks(rt) + len(server.statuses()))


@pytest.mark.parametrize("fault, params, timeout, outcome, accepted", [
    # two drops of chunk 7: each retry on a new connection, the third one carries the rest
    ("drop_connection", {"chunk": 7, "times": 2}, 5.0, "installed", 3),
    # a short but complete chunk: the client drops the connection itself, so every retry is new
    ("truncate_chunk", {"chunk": 5}, 5.0, "DOWNLOAD_FAILED", 4),
    # a chunk slower than the timeout: the timed-out connection is abandoned
    ("delay_chunk", {"chunk": 2, "ms": 600}, 0.2, "DOWNLOAD_FAILED", 4),
], ids=["drop", "truncate", "timeout"])
def test_a_failed_chunk_is_retried_on_a_new_connection(make_ota_server, make_ota_device, fault, params, timeout,
                                                       outcome, accepted) -> None:
    server = make_ota_server()
    server.fault(fault, **params)
    rt, device = make_ota_device(server.url)
    try:
        result = ota_check(device, timeout=timeout)
    except Reboot:
        result = "installed"
    assert result == outcome
    assert len(event(rt, "ota.retry")) == 2
    # 1 + 2 retries; after a final failure the "failed" report needs a connection of its own
    assert _connections(server)[0] == accepted


def test_no_resume_defect_gives_up_at_the_first_drop(make_ota_server, make_ota_device) -> None:
    server = make_ota_server()
    server.fault("drop_connection", chunk=7, times=1)
    rt, device = make_ota_device(server.url, ("ota-no-resume",))
    assert ota_check(device) == "DOWNLOAD_FAILED" and not event(rt, "ota.retry")
    assert _connections(server)[0] == 2  # the download's connection, then one for the "failed" report


def _board_address() -> str:
    return f"127.{90 + os.getpid() % 100}.{os.getpid() // 100 % 250}.{7 + os.getpid() % 200}"


def _tshark_requests(tshark: str, pcap: Path, port: int) -> list[str]:
    """The URIs of the HTTP requests tshark finds in *pcap* (HTTP forced on the server's port)."""
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-d", f"tcp.port=={port},http", "-Y", "http.request",
         "-T", "fields", "-e", "http.request.uri"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    return [line for line in out.splitlines() if line]


@pytest.mark.parametrize("mode", ["relay", pytest.param("sniffer", marks=needs_root)])
def test_capture_of_an_update_splits_into_the_requests_tshark_sees(make_ota_server, make_ota_device, tmp_path,
                                                                   mode) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (.ci/install installs it)")
    server = make_ota_server()
    server.fault("drop_connection", chunk=7, times=1)
    upstream = ("127.0.0.1", server.handle.port)
    address = _board_address()
    capture = open_capture(tmp_path / "update.pcap", host=address, upstream=upstream, force_relay=mode == "relay")
    try:
        host, port = capture.server_address(upstream)
        rt, device = make_ota_device(f"http://{host}:{port}")
        rt.net_address = address
        with pytest.raises(Reboot):
            ota_check(device)
        _connections(server)
    finally:
        stats = capture.stop()
    flows = [f for f in flows_from_pcap(stats.path) if f.proto == "tcp"]
    ours = [r.target for f in flows for r in f.http_requests()]
    assert Counter(ours) == Counter(_tshark_requests(tshark, stats.path, upstream[1]))
    assert len(ours) == server.handle.connections.requests == 2 + _chunks(rt) + 1 + len(server.statuses())
    # two connections: the first carried check, manifest and chunks 0..7 and was cut in chunk 7's body
    first, second = flows
    chunk7 = "/api/ota/download/2.0.0/7"
    exchanges = first.http_exchanges()
    assert [ex.request.target for ex in exchanges][-1] == chunk7 and exchanges[-1].response is None
    assert all(ex.response is not None and ex.response.status == 200 for ex in exchanges[:-1])
    assert second.http_requests()[0].target == chunk7 and first.closed
    assert first.time_of("c2s", exchanges[-1].request.offset) <= second.first_time
