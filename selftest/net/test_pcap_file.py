"""One pcap, one writer: a second writer (same process or another) is refused before it truncates
anything, and the file stays a valid pcap that tshark reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from hil.net.flows import flows_from_pcap
from hil.net.pcap_file import PcapBusy, PcapFile


def _frame(n: int) -> Ether:
    return Ether() / IP(src="127.0.0.5", dst="127.0.0.6") / UDP(sport=4000, dport=5000) / (b"d%03d" % n)


def test_second_writer_is_refused_and_truncates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    with PcapFile(path, owner="first") as first:
        first.write([_frame(0), _frame(1)])
        size = path.stat().st_size
        with pytest.raises(PcapBusy, match=r"x\.pcap is already being written by another capture, so second"):
            PcapFile(path, owner="second").open()
        assert path.stat().st_size == size  # the refused writer did not truncate
        first.write([_frame(2)])
    assert first.count == 3
    assert [d.payload for f in flows_from_pcap(path) for d in f.datagrams] == [b"d000", b"d001", b"d002"]


def test_a_writer_in_another_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "y.pcap"
    code = (
        "import sys; from hil.net.pcap_file import PcapFile, PcapBusy\n"
        "try:\n    PcapFile(sys.argv[1], owner='other').open()\nexcept PcapBusy as e:\n    print(e); sys.exit(3)\n"
    )
    with PcapFile(path, owner="first"):
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert "y.pcap is already being written" in done.stdout


def test_empty_and_closed_file_is_valid_and_reopenable(tmp_path: Path) -> None:
    path = tmp_path / "z.pcap"
    pcap = PcapFile(path, owner="t").open()
    pcap.close()
    pcap.close()  # idempotent
    with pytest.raises(ValueError, match="not open"):
        pcap.write([_frame(0)])
    if shutil.which("tshark"):
        subprocess.run(["tshark", "-r", str(path)], check=True, capture_output=True, timeout=30)
    with PcapFile(path, owner="again") as again:  # the lock went with close()
        again.write([_frame(7)])
    assert flows_from_pcap(path)[0].datagrams[0].payload == b"d007"
