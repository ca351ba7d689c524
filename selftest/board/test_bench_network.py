"""A board with a network of its own, described by an inventory (the way a bench describes a Wi-Fi
board): a virtual board in its own namespace (``hil sim --netns``), its host-side veth as
``network_interface``, Wi-Fi credentials named by ``wifi_ssid`` / ``wifi_password_env``, and NVS
entries of the firmware's own already on it. Sub-pytest runs show:

* the server listens on, and is provisioned as, the veth's address; the board uploads to it;
* provisioning keeps the firmware's NVS entries and writes the Wi-Fi credentials, whose password
  never shows in the junit XML, the report or the logs (printed by a test, it is redacted and the
  run fails naming the leak);
* without ``network_interface`` (or with an address this host lacks) the run errors at the
  reachability preflight, naming the board, the address and what to set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nvs_partitions import generate_partition

from hil.board.board import Board
from hil.board.flash_app import flash_app
from hil.board.spec import BoardSpec
from hil.console.profile import load_profile
from hil.flashing import FlashRegion
from hil.images.index import Index
from hil.images.layout import layout_for
from hil.sim.process import VirtualBoardProcess

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("bench_network_probe.py")
PASSWORD_ENV = "HIL_SELFTEST_WIFI_PASSWORD"
PASSWORD = "selftest-wifi-Pa55word"
RUN_TIMEOUT = 300
FIRMWARE_NVS = [  # what the firmware stored itself: calibration, and its Wi-Fi driver's settings
    ("calib", "namespace", "", ""),
    ("offset", "data", "i32", "-42"),
    ("nvs.net80211", "namespace", "", ""),
    ("sta.ssid", "data", "blob_sz_fill(32;0x00)", "old-ap"),
    ("sta.authmode", "data", "u8", "3"),
]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="a board network namespace needs root and `ip`"
)


@dataclass(frozen=True)
class NetnsBoard:
    url: str
    info: dict


@pytest.fixture(scope="module")
def netns_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsBoard]:
    proc = VirtualBoardProcess("bench-netns", tmp_path_factory.mktemp("bench-netns"), netns=True)
    url = proc.start()
    try:
        yield NetnsBoard(url, json.loads((proc.state_dir / "board.json").read_text()))
    finally:
        proc.stop()


def _firmware_nvs(tmp_path: Path) -> bytes:
    return generate_partition(FIRMWARE_NVS, tmp_path / "firmware-nvs.bin")


def _boards_file(tmp_path: Path, board: NetnsBoard, *, network: bool) -> Path:
    lines = [
        "[[board]]",
        'name = "bench-netns"',
        f'port = "{board.url}"',
        'chip = "esp32"',
        'capabilities = ["virtual", "reset", "sniff"]',
        "reset_pulse = 0.0",
        'wifi_ssid = "lab-ap"',
        f'wifi_password_env = "{PASSWORD_ENV}"',
    ]
    if network:
        lines += [
            f'network_interface = "{board.info["interface"]}"',
            f'network_address = "{board.info["address"]}"',
            f'network_namespace = "{board.info["namespace"]}"',
        ]
    path = tmp_path / "boards.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(tmp_path: Path, boards: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_", "HIL_"))}
    env[PASSWORD_ENV] = PASSWORD
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(PROBE),
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "0",
        "-o",
        "junit_logging=system-out",
        f"--hil-boards={boards}",
        f"--hil-report-dir={tmp_path / 'report'}",
        f"--hil-logs-dir={tmp_path / 'logs'}",
        *extra,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def test_board_on_its_own_network(netns_board: NetnsBoard, firmware: Index, tmp_path: Path) -> None:
    spec = BoardSpec(name="bench-netns", port=netns_board.url, reset_pulse=0.0, capabilities=frozenset({"virtual"}))
    with Board(spec, profile=load_profile("ecowatt-idf")) as board:  # the firmware's own NVS entries first
        layout = layout_for(firmware.chip)
        flash_app(board, firmware, "app-v1", nvs=FlashRegion(layout.nvs, _firmware_nvs(tmp_path), "firmware nvs"))
    result = _run(tmp_path, _boards_file(tmp_path, netns_board, network=True))
    assert "2 passed" in result.stdout, result.stdout[-4000:] + result.stderr[-2000:]
    # the probe printed the password into its output: the registered secret was found in the junit
    # XML, redacted there, and the run fails saying so (a leak is never silent)
    assert result.returncode != 0
    assert "SECRET MATERIAL (Wi-Fi password ($HIL_SELFTEST_WIFI_PASSWORD)) reached" in result.stderr + result.stdout
    junit = (tmp_path / "report" / "junit.xml").read_text()
    assert "kept: -42 3" in junit  # the test's own output did reach the junit XML ...
    assert "[redacted secret: Wi-Fi password" in junit  # ... with the password scrubbed from it
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".xml", ".html", ".log", ".json")]
    leaks = [str(p) for p in written if PASSWORD in p.read_text(errors="replace")]
    assert not leaks and PASSWORD not in result.stdout + result.stderr
    (log,) = [p for p in (tmp_path / "logs").rglob("bench-netns.log") if "over_the_bench_network" in str(p)]
    console = log.read_text(errors="replace")
    assert "wifi:connected with lab-ap" in console
    assert f"esp_netif_handlers: sta ip: {netns_board.info['address']}, mask: 255.255.255.252" in console


def test_board_off_loopback_without_network_interface_is_refused(netns_board: NetnsBoard, tmp_path: Path) -> None:
    result = _run(tmp_path, _boards_file(tmp_path, netns_board, network=False))
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert (
        "reachability preflight: board bench-netns (network_interface not set): the servers would listen on "
        "127.0.0.1, the board's own loopback. Set the board's network_interface in the boards file, or "
        "--hil-server-host ADDRESS, or --hil-server-url URL"
    ) in out, result.stdout[-3000:]


def test_a_server_host_this_host_lacks_is_refused(netns_board: NetnsBoard, tmp_path: Path) -> None:
    result = _run(tmp_path, _boards_file(tmp_path, netns_board, network=True), "--hil-server-host=192.0.2.1")
    assert result.returncode != 0
    assert "no interface of this host has the address 192.0.2.1" in " ".join(result.stdout.split()), result.stdout[
        -3000:
    ]
