"""Capture: ready before the test acts, drained at stop (no loss in a burst of 1,000), a valid pcap,
and the not-root path (CAP_NET_RAW dropped in a subprocess) raising or falling back to the relay."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hil.net.capture import CaptureError, Sniffer, capture_filter, capture_path
from hil.net.flows import flows_from_pcap

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sniffing needs CAP_NET_RAW (run as root in CI)")


def _burst(addr: str, count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((addr, 0))
        for i in range(count):
            sock.sendto(b"pkt%05d" % i, sock.getsockname())


def test_filter_and_path_helpers() -> None:
    assert capture_filter("lo", "127.0.0.5") == "inbound and host 127.0.0.5"
    assert capture_filter("wlan1", "192.168.4.2", "tcp port 5001") == "host 192.168.4.2 and (tcp port 5001)"
    path = capture_path("captures", "run1", "tests/test_upload.py::test_replay[EW-1]")
    assert path == Path("captures/runs/run1/tests_test_upload.py_test_replay[EW-1].pcap")
    second = capture_path("captures", "run1", "tests/test_upload.py::test_replay[EW-1]", "coap")
    assert second == path.with_name("tests_test_upload.py_test_replay[EW-1].coap.pcap")


@needs_root
def test_a_second_capture_of_the_same_file_is_refused_not_interleaved(tmp_path: Path, board_addr: str) -> None:
    """Two sniffers once wrote one test's pcap at independent offsets (tshark: "File has
    2411760896-byte packet"); the second is now refused, naming the file, and the first's pcap is whole."""
    path = tmp_path / "one.pcap"
    with Sniffer(path, host=board_addr) as first:
        with pytest.raises(CaptureError, match=r"one\.pcap is already being written.*own file name"):
            Sniffer(path, host=board_addr).start()
        _burst(board_addr, 20)
    assert first.stop().packets_written == 20
    (flow,) = flows_from_pcap(path)
    assert len(flow.datagrams) == 20
    with Sniffer(path, host=board_addr) as again:  # closed: the lock went with it
        _burst(board_addr, 2)
    assert again.stop().packets_written == 2


@needs_root
def test_burst_of_1000_fully_captured_right_after_start(tmp_path: Path, board_addr: str) -> None:
    with Sniffer(tmp_path / "burst.pcap", host=board_addr) as sniffer:
        _burst(board_addr, 1000)  # first packet sent the instant start() returned
    stats = sniffer.stop()
    assert stats.packets_written == 1000 and stats.kernel_drops == 0
    (flow,) = flows_from_pcap(stats.path)
    assert [d.payload for d in flow.datagrams] == [b"pkt%05d" % i for i in range(1000)]  # once each, in order
    assert stats.start_latency_s < 2.0


@needs_root
def test_other_hosts_and_sentinel_are_not_in_the_pcap(tmp_path: Path, board_addr: str) -> None:
    other = board_addr.rsplit(".", 1)[0] + ".251"
    with Sniffer(tmp_path / "f.pcap", host=board_addr) as sniffer:
        _burst(other, 5)
        _burst(board_addr, 3)
    assert sniffer.stop().packets_written == 3
    assert b"hil-capture-sentinel" not in (tmp_path / "f.pcap").read_bytes()


@needs_root
def test_empty_capture_is_still_a_valid_pcap(tmp_path: Path, board_addr: str) -> None:
    with Sniffer(tmp_path / "e.pcap", host=board_addr) as sniffer:
        pass
    assert sniffer.stop().packets_written == 0 and flows_from_pcap(tmp_path / "e.pcap") == []
    if shutil.which("tshark"):
        subprocess.run(["tshark", "-r", str(tmp_path / "e.pcap")], check=True, capture_output=True, timeout=30)


def test_unknown_interface_names_the_board_and_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"nope0.*127\.0\.0\.9.*capture_iface"):
        Sniffer(tmp_path / "x.pcap", host="127.0.0.9", iface="nope0").start()


def test_stop_before_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="never started"):
        Sniffer(tmp_path / "x.pcap", host="127.0.0.9").stop()


_UNPRIVILEGED = textwrap.dedent("""
    import sys, json, socket, threading
    from hil.net.capture import CaptureUnavailable, Sniffer
    from hil.net.fallback import FallbackNotice, open_capture
    from hil.net.flows import flows_from_pcap
    out, addr = sys.argv[1], sys.argv[2]
    try:
        Sniffer(out + "/s.pcap", host=addr).start()
        print("SNIFFED")
    except CaptureUnavailable as exc:
        print("UNAVAILABLE", "CAP_NET_RAW" in str(exc))
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); srv.bind(("127.0.0.1", 0))
    notice = FallbackNotice()
    for n in range(2):
        with open_capture(out + f"/r{n}.pcap", host=addr, upstream=srv.getsockname(), proto="udp",
                          notice=notice) as cap:
            cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); cli.bind((addr, 0))
            cli.sendto(b"via relay", cap.server_address(srv.getsockname()))
            data, peer = srv.recvfrom(100); srv.sendto(b"answer", peer)
            cli.settimeout(5); print("REPLY", cli.recv(100).decode(), cap.mode); cli.close()
        print("DATAGRAMS", [d.payload.decode() for f in flows_from_pcap(cap.path) for d in f.datagrams])
    srv.close()
""")


@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv (util-linux) not installed")
def test_without_cap_net_raw_start_raises_and_relay_fallback_records(tmp_path: Path, board_addr: str) -> None:
    cmd = ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", sys.executable, "-c", _UNPRIVILEGED,
           str(tmp_path), board_addr]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "UNAVAILABLE True"
    assert lines.count("REPLY answer relay") == 2
    assert lines.count("DATAGRAMS ['via relay', 'answer']") == 2
    assert proc.stderr.count("recording through a relay instead") == 1  # said once, not per test
