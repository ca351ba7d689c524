"""``hil sim --netns``: the virtual board's network is a namespace of its own behind a veth pair.
Its 127.0.0.1 is itself (a server on this host's loopback is unreachable, as from a real board),
this host is reached at the veth's address, its serial port and control socket stay on this host,
and the namespace is gone after a stop, and after a SIGKILL at the next start."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hil.sim import netns
from hil.sim.firmware import net
from hil.sim.power import PowerSwitch
from hil.sim.process import VirtualBoardProcess
from hil.sim.station import Station

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="network namespaces need root and iproute2's `ip`"
)


def _exists(namespace: str, host_if: str) -> tuple[bool, bool]:
    return (netns.NETNS_DIR / namespace).exists(), Path("/sys/class/net", host_if).exists()


@pytest.fixture
def board(tmp_path: Path):
    proc = VirtualBoardProcess("netns-board", tmp_path / "state", netns=True)
    proc.start()
    try:
        yield proc, json.loads((proc.state_dir / "board.json").read_text())
    finally:
        proc.stop()


def test_board_has_its_own_network(board) -> None:
    proc, info = board
    assert info["namespace"] == f"hil-sim-{info['pid']}" and info["interface"] == f"hsim{info['pid']}"
    host_ip = info["gateway"]
    assert _exists(info["namespace"], info["interface"]) == (True, True)
    station = Station(info["address"], netns.PREFIX, host_ip, info["namespace"], info["interface"])
    with socket.create_server((host_ip, 0)) as on_veth, socket.create_server(("127.0.0.1", 0)) as on_loopback:
        # this host, through the veth: reached, from the board's own address
        with net.open_socket(host_ip, on_veth.getsockname()[1], station=station):
            _, peer = on_veth.accept()
        assert peer[0] == info["address"]
        # 127.0.0.1 is the board itself: this host's loopback listener is not there
        with pytest.raises(net.NetError, match="connection refused"):
            net.open_socket("127.0.0.1", on_loopback.getsockname()[1], station=station)
    # the serial port and the control socket are on this host, not in the namespace
    assert proc.url is not None and proc.url.startswith("rfc2217://127.0.0.1:")
    assert PowerSwitch(proc.control_socket).status()["address"] == info["address"]


def test_stop_removes_the_namespace(tmp_path: Path) -> None:
    proc = VirtualBoardProcess("netns-stop", tmp_path / "state", netns=True)
    proc.start()
    info = json.loads((proc.state_dir / "board.json").read_text())
    proc.stop()
    assert _exists(info["namespace"], info["interface"]) == (False, False)


def test_a_killed_boards_namespace_is_removed_at_the_next_start(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "hil.sim", "--port", "0", "--netns", "--state-dir", str(tmp_path / "killed")]
    killed = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert killed.stdout is not None and killed.stdout.readline().startswith("rfc2217://")
    info = json.loads((tmp_path / "killed" / "board.json").read_text())
    killed.send_signal(signal.SIGKILL)  # no chance to clean up
    killed.wait(10)
    killed.stdout.close()
    assert _exists(info["namespace"], info["interface"]) == (True, True)
    proc = VirtualBoardProcess("netns-next", tmp_path / "next", netns=True)
    proc.start()
    try:
        assert _exists(info["namespace"], info["interface"]) == (False, False)
    finally:
        proc.stop()


def test_without_root_the_error_says_what_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(netns.NetnsError, match=r"needs root \(CAP_NET_ADMIN and CAP_SYS_ADMIN\).*drop --netns"):
        netns.check_available()
