"""Console: expect / expect_event / crash / unexpected reboot / timeouts / logs / pause.

The "device" is pyserial's ``loop://`` port: what the test writes is what the console reads, so the
test drives the output line by line and waits only on the console's own conditions.
"""

from __future__ import annotations

import threading
import time

import pytest
import serial

from hil.console import (Console, ConsoleClosed, DeviceCrashed, ExpectTimeout, LineKind, UnexpectedOutput,
                         UnknownEventError)
from hil.console.console import LOADER_SESSION

BANNER = "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"


@pytest.fixture
def port():
    p = serial.serial_for_url("loop://", timeout=0.1)
    yield p
    p.close()


@pytest.fixture
def console(port):
    with Console(port, "dut0") as c:
        yield c


def emit(port, *lines: str) -> None:
    port.write("".join(f"{line}\r\n" for line in lines).encode())


def test_expect_consumes_in_order_and_strips_colours(console, port):
    emit(port, "\x1b[0;32mI (315) ecowatt: Firmware Version: 1.0.0\x1b[0m", "I (320) security: Nonce loaded from NVS: 10000")
    m = console.expect(r"Firmware Version: (\S+)$", timeout=2)
    assert m.group(1) == "1.0.0"
    # the matched line is consumed: the same pattern must not match it again
    with pytest.raises(ExpectTimeout):
        console.expect(r"Firmware Version", timeout=0.2)
    # ...but searching from an earlier mark finds it
    assert console.expect(r"Nonce loaded", timeout=1, since=0)


def test_expect_event_fields_compared_as_strings(console, port):
    emit(port, "status: version=1.0.0 nonce=10001 server=https://127.0.0.1:5001",
         "status: version=2.0.0 nonce=10002 server=https://127.0.0.1:5001")
    m = console.expect_event("status", timeout=2, version="2.0.0", nonce=10002)
    assert m.group("server") == "https://127.0.0.1:5001"


def test_expect_event_unknown_event_and_field(console):
    with pytest.raises(UnknownEventError, match="ecowatt-idf"):
        console.expect_event("no.such.event", timeout=0.1)
    with pytest.raises(ValueError, match="colour"):
        console.expect_event("boot.version", timeout=0.1, colour="red")


def test_timeout_names_what_how_long_and_tail(console, port):
    emit(port, *[f"I ({i}) app: line {i}" for i in range(50)])
    console.expect("line 49", timeout=2)
    t0 = time.monotonic()
    with pytest.raises(ExpectTimeout) as info:
        console.expect_event("boot.version", timeout=0.3, version="9.9.9")
    assert time.monotonic() - t0 >= 0.3
    text = str(info.value)
    assert "dut0" in text and "boot.version" in text and "version=9.9.9" in text and "0.3 s" in text
    assert len(info.value.tail) == 40 and info.value.tail[-1].endswith("line 49")


def test_mark_limits_search_to_later_output(console, port):
    emit(port, "I (1) ecowatt: Firmware Version: 1.0.0")
    console.expect("Firmware Version", timeout=2, since=0)
    mark = console.mark()
    with pytest.raises(ExpectTimeout):
        console.expect_event("boot.version", timeout=0.2, since=mark)


@pytest.mark.parametrize("crash", [
    "Guru Meditation Error: Core  0 panic'ed (LoadProhibited). Exception was unhandled.",
    "abort() was called at PC 0x400d1234 on core 0",
    "E (5000) task_wdt: Task watchdog got triggered.",
])
def test_crash_ends_wait_at_once(console, port, crash):
    emit(port, "I (1) app: before", crash)
    t0 = time.monotonic()
    with pytest.raises(DeviceCrashed) as info:
        console.expect_event("boot.version", timeout=30)
    assert time.monotonic() - t0 < 5
    assert "crashed" in str(info.value) and info.value.tail[-1] == crash
    # reported once: the next wait starts after the crash line
    emit(port, "I (2) ecowatt: Firmware Version: 1.0.1")
    assert console.expect_event("boot.version", timeout=2).group("version") == "1.0.1"


def test_unexpected_reboot_vs_announced_reset(console, port):
    emit(port, BANNER)
    with pytest.raises(DeviceCrashed, match="rebooted unexpectedly"):
        console.expect_event("boot.version", timeout=5)
    console.expect_reset()
    emit(port, BANNER, "I (315) ecowatt: Firmware Version: 1.0.0")
    assert console.expect_event("boot.version", timeout=5)
    kinds = [line.kind for line in console.lines() if line.text == BANNER]
    assert kinds == [LineKind.UNEXPECTED_RESET, LineKind.EXPECTED_RESET]
    # waiting for the reset itself is not a failure
    emit(port, BANNER)
    assert console.expect_event("rom.reset", timeout=2, cause="POWERON_RESET")


def test_expect_absent_and_assert_no_event(console, port):
    console.expect_absent("forbidden", within=0.2)
    emit(port, "I (9) app: forbidden thing")
    with pytest.raises(UnexpectedOutput, match="forbidden thing"):
        console.expect_absent("forbidden", within=2, since=0)
    emit(port, "I (9) ecowatt: Firmware Version: 1.0.0")
    console.assert_no_event("boot.version", within=0.2, since=0, version="2.0.0")


def test_log_file_per_test_with_timestamps_and_raw_line(console, port, tmp_path):
    first, second = tmp_path / "t1" / "dut0.log", tmp_path / "t2" / "dut0.log"
    console.log_to(first)
    emit(port, "\x1b[0;33mW (1) x: one\x1b[0m")
    console.expect("one", timeout=2)
    console.send("status")
    console.expect("status", timeout=2)  # loop:// echoes what was sent
    console.log_to(second)
    emit(port, "I (2) x: two")
    console.expect("two", timeout=2)
    console.close()
    text = first.read_text()
    assert "\x1b[0;33mW (1) x: one" in text and ">>> status" in text and "two" not in text
    assert "[+" in text and text.startswith("[")
    assert "x: two" in second.read_text()


def test_pause_hands_over_the_port(console, port):
    with console.pause() as p:
        emit(p, "SLIP-ish data read by esptool")
        assert p.read(100).startswith(b"SLIP-ish")
    emit(port, "I (3) x: after")
    console.expect("after", timeout=2)
    assert not [ln for ln in console.lines() if "SLIP" in ln.text]
    assert port.timeout == 0.1


def test_pause_marks_the_loader_session_in_the_log_only(console, port, tmp_path):
    console.log_to(tmp_path / "t.log")
    emit(port, "I (1) x: before")
    console.expect("before", timeout=2)
    with console.pause():
        pass
    emit(port, "I (2) x: after")
    console.expect("after", timeout=2)
    console.log_to(None)
    logged = (tmp_path / "t.log").read_text().splitlines()
    assert logged[1] == LOADER_SESSION and "after" in logged[2]  # a flashing, told apart from a power cut
    assert not [ln for ln in console.lines() if ln.text == LOADER_SESSION]  # no wait can match it


def test_port_failure_raises_console_closed(port):
    class Dying:
        port = "loop://dying"
        is_open = True
        timeout = None
        in_waiting = 0

        def read(self, n):
            raise serial.SerialException("device disconnected")

    with Console(Dying(), "dut9") as c:
        with pytest.raises(ConsoleClosed, match="device disconnected"):
            c.expect("never", timeout=5)


def test_waiting_thread_is_woken_by_new_line(console, port):
    result = {}

    def waiter():
        result["m"] = console.expect("late line", timeout=5)

    t = threading.Thread(target=waiter)
    t.start()
    emit(port, "late line")
    t.join(5)
    assert result["m"].group(0) == "late line"
