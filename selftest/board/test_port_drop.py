"""A Board whose USB port drops mid-test (the virtual board as a USB-Serial/JTAG device, power
cycled) keeps its console: later boot output arrives, commands work, the gap is in the test's log."""

from __future__ import annotations

import pytest

from hil.board.board import Board
from hil.board.spec import BoardSpec
from hil.sim.board import VirtualBoard
from hil.sim.rfc2217_server import Rfc2217Server
from hil.sim.runtime import Runtime

GAP = 0.2


def counting_app() -> object:
    """An app that says which boot this is, keeps ticking, and echoes console commands."""
    boots = {"n": 0}

    def app(rt: Runtime) -> None:
        boots["n"] += 1
        tick = 0
        while True:
            rt.write_line(f"app: boot {boots['n']} tick {tick}")
            tick += 1
            line = rt.read_line(0.05)
            if line:
                rt.write_line(f"app: echo {line}")

    return app


class SimPower:
    """The in-process virtual board's power switch as a PowerDriver."""

    def __init__(self, board: VirtualBoard) -> None:
        self.board = board

    def off(self) -> None:
        self.board.power_off()

    def on(self) -> None:
        self.board.power_on()

    def cycle(self) -> None:
        self.off()
        self.on()


@pytest.fixture
def usb_board():
    sim = VirtualBoard("esp32c6", None, firmware=counting_app(), name="usbdut").open()
    server = Rfc2217Server(sim, usb_jtag_gap=GAP).start()
    spec = BoardSpec(name="usbdut", port=server.url, chip="esp32c6", reset="usb-jtag", reset_pulse=0.0)
    board = Board(spec, power=SimPower(sim)).open()
    yield board, server
    board.close()
    server.close()
    sim.close()


def test_console_survives_a_power_cycle_that_re_enumerates_the_port(usb_board, tmp_path):
    board, server = usb_board
    console = board.console
    log = tmp_path / "test.log"
    console.log_to(log)
    console.expect(r"app: boot 1 tick", timeout=5, since=console.mark())  # a line in this log
    board.power_cycle()
    # today the reader ends at the drop and this raises ConsoleClosed at once
    console.expect(r"app: boot 2 tick", timeout=10)
    console.send("status")
    console.expect(r"app: echo status", timeout=5)
    assert server.usb is not None and server.usb.enumerations == 1
    [gap] = console.gaps
    assert gap.port == server.url and gap.duration >= GAP * 0.9
    assert board.port is console.port and board.port.is_open  # the board hands out the reopened port
    console.log_to(None)
    text = log.read_text()
    assert f"--- hil: port {server.url} lost (" in text and "reopened after" in text
    assert text.index("boot 1") < text.index("reopened after") < text.index("boot 2")
