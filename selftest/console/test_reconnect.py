"""Console resilience: a lost port is reopened with back-off and the gap logged; a port that stays
away is a clear error at once for every waiter; partial lines stay in the log they belong to.

The "device" is a scripted port: each ``read`` returns the next chunk, and the reader asks for the
next chunk only after it processed the previous one, so "the reader has consumed everything" is an
event the test waits on, not a sleep.
"""

from __future__ import annotations

import queue
import threading
import time

import pytest
import serial

from hil.console import Console, ConsoleClosed, ConsoleLost, ExpectTimeout, ReconnectPolicy

UNPLUG = object()  # scripted: the next read raises, as pyserial does on a vanished tty


class ScriptedPort:
    """A SerialPort whose reads return scripted chunks; ``drained`` is set when the reader asks for
    more after the last one."""

    def __init__(self, name: str) -> None:
        self.port = name
        self.is_open = True
        self.baudrate = 115200
        self.timeout: float | None = 0.1
        self.dtr = self.rts = False
        self.written = bytearray()
        self.drained = threading.Event()
        self._chunks: queue.Queue[object] = queue.Queue()

    def feed(self, *chunks: object) -> None:
        self.drained.clear()
        for chunk in chunks:
            self._chunks.put(chunk)

    @property
    def in_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise serial.PortNotOpenError()
        try:
            chunk = self._chunks.get_nowait()
        except queue.Empty:
            self.drained.set()
            try:
                chunk = self._chunks.get(timeout=self.timeout)
            except queue.Empty:
                return b""
        if chunk is UNPLUG:
            raise serial.SerialException("device reports readiness to read but returned no data (device disconnected?)")
        assert isinstance(chunk, bytes)
        return chunk

    def write(self, data: bytes) -> int:
        self.written += data
        return len(data)

    def flush(self) -> None:
        pass

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False


BY_ID = "/dev/serial/by-id/usb-Espressif_USB_JTAG_serial_debug_unit_F4:12:FA:00:11:22-if00"


def test_lost_port_is_reopened_and_the_gap_and_the_cut_line_are_logged(tmp_path):
    first, second = ScriptedPort(BY_ID), ScriptedPort(BY_ID)
    reopened = iter([serial.SerialException("[Errno 2] No such file or directory"), second])

    def reopen() -> ScriptedPort:
        nxt = next(reopened)
        if isinstance(nxt, Exception):
            raise nxt
        return nxt

    log = tmp_path / "test.log"
    with Console(first, "c6", reopen=reopen, reconnect=ReconnectPolicy(timeout=5, first_delay=0.01)) as console:
        console.log_to(log)
        first.feed(b"I (10) app: before\r\nI (11) app: half a li", UNPLUG)
        second.feed(b"I (20) app: after the drop\r\n")
        console.expect("after the drop", timeout=5)  # today: ConsoleClosed as soon as the read failed
        assert console.port is second and not first.is_open
        console.send("status")
        assert second.written == b"status\n"
        [gap] = console.gaps
        assert gap.port == BY_ID and gap.attempts == 2 and "device disconnected" in gap.reason
    text = log.read_text()
    assert "I (11) app: half a li [hil: partial line, port lost]" in text
    assert f"--- hil: port {BY_ID} lost (device reports readiness" in text
    assert "reopened after" in text and "(2 attempts)" in text
    assert text.index("half a li") < text.index("reopened after") < text.index("after the drop")


def test_port_that_never_comes_back_fails_every_waiter_at_once_with_board_port_and_what_to_check():
    port = ScriptedPort(BY_ID)

    def reopen() -> ScriptedPort:
        raise serial.SerialException(f"cannot open serial port {BY_ID}: [Errno 2] No such file or directory")

    bound = 0.5
    with Console(port, "c6", reopen=reopen, reconnect=ReconnectPolicy(timeout=bound, first_delay=0.05)) as console:
        port.feed(UNPLUG)
        start = time.monotonic()
        with pytest.raises(ConsoleLost) as info:
            console.expect("never", timeout=30)  # fails when the bound passes, not after its own 30 s
        waited = time.monotonic() - start
        assert bound * 0.8 <= waited < bound + 3
        text = str(info.value)
        assert "board c6" in text and BY_ID in text and "did not come back within" in text
        assert "cable" in text and "hub" in text and "by-id" in text
        assert "No such file or directory" in text
        for later in (lambda: console.expect("x", timeout=30), lambda: console.send("status")):
            start = time.monotonic()
            with pytest.raises(ConsoleLost):
                later()
            assert time.monotonic() - start < 1.0
        assert isinstance(info.value, ConsoleClosed)  # callers catching the old error still do


def test_timeout_during_a_gap_says_the_port_is_away():
    port = ScriptedPort(BY_ID)
    release = threading.Event()
    back = ScriptedPort(BY_ID)

    def reopen() -> ScriptedPort:
        if not release.is_set():
            raise serial.SerialException("[Errno 2] No such file or directory")
        return back

    with Console(
        port, "c6", reopen=reopen, reconnect=ReconnectPolicy(timeout=10, first_delay=0.01, max_delay=0.05)
    ) as console:
        port.feed(UNPLUG)
        with pytest.raises(ExpectTimeout, match=r"serial port .* lost .* still reopening"):
            console.expect("boot", timeout=0.3)
        release.set()
        back.feed(b"boot\r\n")
        console.expect("boot", timeout=5)


def test_partial_line_goes_to_the_log_it_started_in_not_the_next_tests(tmp_path):
    port = ScriptedPort("rfc2217://127.0.0.1:4000")
    with Console(port, "dut") as console:
        console.log_to(tmp_path / "first.log")
        port.feed(b"I (1) app: complete\r\nI (2) app: the first test's unfinished li")
        assert port.drained.wait(5)  # the reader consumed both chunks
        console.log_to(tmp_path / "second.log")
        port.feed(b"ne\r\nI (3) app: the second test's line\r\n")
        console.expect("second test's line", timeout=5)
    first, second = (tmp_path / "first.log").read_text(), (tmp_path / "second.log").read_text()
    assert "the first test's unfinished li [hil: partial line, log switched]" in first
    assert "first test" not in second  # today the whole line lands in the second test's log
    assert "the second test's line" in second


def test_pause_waits_for_a_lost_port_and_hands_over_the_new_one():
    first, second = ScriptedPort(BY_ID), ScriptedPort(BY_ID)
    allow, attempted = threading.Event(), threading.Event()

    def reopen() -> ScriptedPort:
        attempted.set()
        if not allow.is_set():
            raise serial.SerialException("[Errno 2] No such file or directory")
        return second

    with Console(
        first, "c6", reopen=reopen, reconnect=ReconnectPolicy(timeout=10, first_delay=0.01, max_delay=0.05)
    ) as console:
        first.feed(UNPLUG)
        assert attempted.wait(5)  # the reader noticed the loss and is reopening
        handed: list[object] = []

        def flash() -> None:
            with console.pause() as port:
                handed.append(port)

        flasher = threading.Thread(target=flash)
        flasher.start()
        flasher.join(0.3)  # bounded look: it must still be blocked
        assert flasher.is_alive() and not handed  # waiting for the port to come back, not handed the dead one
        allow.set()
        flasher.join(5)
        assert handed == [second]
