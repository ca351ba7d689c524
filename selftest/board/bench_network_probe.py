"""A scenario the bench-network self-test (``test_bench_network.py``) runs in a sub-pytest against an
inventory board with a network of its own: it uploads, then reads back what provisioning left in
the board's NVS. Not collected by the self-test run itself (not named ``test_*.py``)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from hil.board.board import Board
from hil.board.contract import Provision, upload_now
from hil.images import nvs
from hil.images.layout import layout_for
from hil.images.nvs_gen import DeviceIdentity
from hil.net.address import interface_ipv4
from hil.server.under_test import ServerUnderTest

PASSWORD_ENV = "HIL_SELFTEST_WIFI_PASSWORD"
pytestmark = pytest.mark.skipif(PASSWORD_ENV not in os.environ, reason="run by test_bench_network.py, with its board")


def test_provisioned_over_the_bench_network(
    provisioned_board: Board, device: DeviceIdentity, server: ServerUnderTest
) -> None:
    spec = provisioned_board.spec
    console = provisioned_board.console
    (up,) = [line for line in console.lines() if "esp_netif_handlers: sta ip:" in line.text]
    assert console.cursor > up.seq  # provisioning returned only once the network was up
    assert spec.network_interface is not None
    assert urlsplit(server.url).hostname == interface_ipv4(spec.network_interface)  # the veth's, not 127.0.0.1
    upload_now(provisioned_board, device.nonce + 1)
    assert server.readings(device.device_id)  # the board reached the server from its own network
    layout = layout_for("esp32")
    image = nvs.parse(provisioned_board.read_flash(layout.nvs, layout.nvs_size))
    print("kept:", image.get("calib", "offset"), image.get("nvs.net80211", "sta.authmode"))
    assert image.get("calib", "offset") == -42 and image.get("nvs.net80211", "sta.authmode") == 3
    ssid = image.get("nvs.net80211", "sta.ssid")
    assert isinstance(ssid, bytes) and ssid[4:10] == b"lab-ap"
    # the password reaches the test's output (as a careless scenario might print it): the junit XML
    # and the report must not show it
    print("wifi password in this test's output:", os.environ[PASSWORD_ENV])


def test_a_loopback_server_url_is_refused(provision: Provision, board: Board) -> None:
    with pytest.raises(
        pytest.fail.Exception,
        match=r"board bench-netns .* would be provisioned with server URL "
        r"http://127\.0\.0\.1:5001: 127\.0\.0\.1 is the board's own",
    ):
        provision(server_url="http://127.0.0.1:5001")
