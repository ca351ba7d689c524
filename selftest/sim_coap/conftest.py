"""Fixtures for the device-side CoAP/CoAPS self-tests: the firmware app running on a threaded fake
runtime with a real NVS partition (esp-idf-nvs-partition-gen), its CoAP servers on real UDP sockets
of a 127.x address of its own, and libcoap's ``coap-client`` (Debian ``libcoap3-bin``) as the peer."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sim_boot.fakes import FakeFlash, _write, make_app
from sim_upload.fakes import ThreadedRuntime

from hil.images.layout import layout_for
from hil.images.nvs_gen import DeviceIdentity, build_nvs
from hil.sim.booted import BootedImage
from hil.sim.firmware import app
from hil.sim.runtime import Halted, Reboot

LAYOUT = layout_for("esp32")
PSK_ID, PSK = "iotlab2024", "secretkey123456"  # the SOP's documented defaults: TEST ONLY
CLIENT_TIMEOUT_S = 3  # coap-client -B: how long it waits for a reply
COAP_CLIENT = shutil.which("coap-client-openssl") or shutil.which("coap-client-gnutls")


def free_address() -> str:
    """A 127.x address whose CoAP ports are free (each test's board has its own, like a bench)."""
    for _ in range(50):
        address = f"127.{os.getpid() % 200 + 20}.{int.from_bytes(os.urandom(1), 'big')}.{os.urandom(1)[0] % 250 + 2}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((address, 5684))
            except OSError:
                continue
        return address
    raise RuntimeError("no free 127.x address for the CoAP self-test board")


@dataclass
class Board:
    """One running app: its runtime (log lines, console), address and thread."""

    rt: ThreadedRuntime
    address: str
    thread: threading.Thread

    def console(self, line: str, expect: str, timeout: float = 5.0) -> str:
        """Type *line* and return the first new line matching *expect*."""
        count = len([x for x in self.rt.lines if _search(expect, x)])
        self.rt.type_line(line)
        return self.rt.wait_for(expect, count + 1, timeout)[-1].group(0)

    def sessions(self) -> int:
        """The board's DTLS session count (console ``coap sessions``)."""
        line = self.console("coap sessions", r"coap: sessions=(\d+)")
        return int(line.split("=")[1].split()[0])

    def power_off(self) -> None:
        """EN low; waits for the app (and with it the CoAP task) to end."""
        self.rt.halt()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the app did not end within 10 s of the power cut"


def _search(pattern: str, line: str) -> bool:
    return re.search(pattern, line) is not None


@pytest.fixture(scope="session")
def nvs_images(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., bytes]:
    """``nvs_images(**identity_fields)``: the NVS partition of a test identity (cached per fields)."""
    cache: dict[tuple, bytes] = {}

    def build(**fields: object) -> bytes:
        key = tuple(sorted(fields.items()))
        if key not in cache:
            ident = DeviceIdentity("EW-0001", os.urandom(32), os.urandom(16), os.urandom(32), **fields)  # type: ignore[arg-type]
            cache[key] = build_nvs(ident, tmp_path_factory.mktemp("nvs") / "nvs.bin").read_bytes()
        return cache[key]

    return build


@pytest.fixture
def make_board(nvs_images: Callable[..., bytes]) -> Iterator[Callable[..., Board]]:
    """``make_board(defects=(), **identity_fields)``: boot the app (``run_app``) on a fresh runtime
    and wait for ``coap.started``. Every board is powered off at teardown."""
    boards: list[Board] = []
    booted = BootedImage(LAYOUT.primary_slot, None, make_app("2.0.0"), 0x40080404)  # type: ignore[arg-type]

    def factory(defects: tuple[str, ...] = (), **fields: object) -> Board:
        flash = FakeFlash()
        _write(flash, LAYOUT.nvs, nvs_images(**fields))
        rt = ThreadedRuntime(flash, defects)
        rt.net_address = free_address()
        thread = threading.Thread(target=_run, args=(rt, booted), name="app", daemon=True)
        board = Board(rt, rt.net_address, thread)
        boards.append(board)
        thread.start()
        rt.wait_for(r"coap: CoAP server started on ")
        return board

    yield factory
    for board in boards:
        board.power_off()


def _run(rt: ThreadedRuntime, booted: BootedImage) -> None:
    try:
        app.run_app(rt, booted)
    except (Halted, Reboot):
        return


@pytest.fixture
def coap_client() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``coap_client(url, method="get", identity=None, key=None, payload=None)``: libcoap's real
    client (``-B`` bounds its wait); the completed process, stdout = the response payload."""
    if COAP_CLIENT is None:
        pytest.fail("libcoap's coap-client is not installed: apt-get install -y libcoap3-bin (.ci/install)")

    def run(
        url: str, method: str = "get", identity: str | None = None, key: str | None = None, payload: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(COAP_CLIENT), "-B", str(CLIENT_TIMEOUT_S), "-m", method]
        if identity is not None:
            argv += ["-u", identity]
        if key is not None:
            argv += ["-k", key]
        if payload is not None:
            argv += ["-e", payload]
        return subprocess.run([*argv, url], capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S + 10, check=False)

    return run
