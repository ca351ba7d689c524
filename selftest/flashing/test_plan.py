"""Skip-if-identical logic with a fake loader, flash plans, bounded esptool calls, output routing."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from contextlib import redirect_stdout
from types import SimpleNamespace

import pytest
import serial

from hil.flashing import (FlashConnectError, FlashError, FlashRegion, FlashSession, FlashTimeout, RegionFromFlash,
                          apply_plan, plan_from, plan_from_index)
from hil.flashing.esptool_host import Sink, esptool_module, run_bounded
from hil.flashing.flasher import check_erase_range


class FakeLoader:
    """A flash the size of the test's regions, with the stub's MD5 and write operations."""

    chip = "esp32"
    mac = "24:0a:c4:00:00:01"

    def __init__(self, size=0x40000):
        self.flash = bytearray(b"\xff" * size)
        self.writes: list[str] = []
        self.md5_calls = 0

    def flash_md5(self, offset, size):
        self.md5_calls += 1
        return hashlib.md5(self.flash[offset:offset + size]).hexdigest()

    def write(self, region):
        self.writes.append(region.label)
        self.flash[region.offset:region.end] = region.data

    def erase(self, offset, size):
        self.flash[offset:offset + size] = b"\xff" * size

    def read(self, offset, size):
        self.writes.append(f"read {offset:#x}")
        return bytes(self.flash[offset:offset + size])


def test_only_differing_regions_are_written():
    loader = FakeLoader()
    boot, nvs, app = (FlashRegion(0x1000, b"B" * 100, "bootloader"), FlashRegion(0x9000, b"N" * 50, "nvs"),
                      FlashRegion(0x20000, b"A" * 300, "app"))
    first = apply_plan(loader, [boot, nvs, app], board="dut0", port="loop://")
    assert first.written == ["bootloader", "nvs", "app"] and first.bytes_written == 450
    again = apply_plan(loader, [boot, nvs, FlashRegion(0x20000, b"a" * 300, "app-v2")], board="dut0", port="loop://")
    assert again.skipped == ["bootloader", "nvs"] and again.written == ["app-v2"] and again.bytes_written == 300
    forced = apply_plan(loader, [boot], board="dut0", port="loop://", force=True)
    assert forced.written == ["bootloader"]
    assert "skipped  nvs" in again.format() and "dut0 (loop://, esp32): 300 bytes written" in again.format()


def test_a_region_made_from_the_flash_is_read_and_written_in_the_same_session():
    loader = FakeLoader()
    loader.flash[0x9000:0x9004] = b"OWN!"  # the firmware's own entry
    merged = RegionFromFlash(0x9000, 8, lambda current: current[:4] + b"HARN", "nvs (merged)")
    report = apply_plan(loader, [merged], board="dut0", port="p")
    assert loader.writes == ["read 0x9000", "nvs (merged)"] and report.written == ["nvs (merged)"]
    assert bytes(loader.flash[0x9000:0x9008]) == b"OWN!HARN"
    again = apply_plan(loader, [merged], board="dut0", port="p")  # same result: skip-if-identical still holds
    assert again.skipped == ["nvs (merged)"]


def test_a_region_erased_on_the_board_is_rewritten():
    loader = FakeLoader()
    boot = FlashRegion(0x1000, b"B" * 4096, "bootloader")
    apply_plan(loader, [boot], board="dut0", port="p")
    loader.erase(0x1000, 0x1000)
    assert apply_plan(loader, [boot], board="dut0", port="p").written == ["bootloader"]


def test_plan_from_tuples_paths_and_index(tmp_path):
    image = tmp_path / "app.bin"
    image.write_bytes(b"\xe9" + bytes(99))
    regions = plan_from([(0x20000, image, "app"), (0x9000, b"nvs", "nvs")])
    assert [(r.offset, r.size, r.label) for r in regions] == [(0x20000, 100, "app"), (0x9000, 3, "nvs")]
    with pytest.raises(ValueError, match="overlap.*app"):
        plan_from([(0x20000, image, "app"), (0x20010, b"x", "other")])
    with pytest.raises(FileNotFoundError, match="missing.bin.*0x1000"):
        plan_from([(0x1000, tmp_path / "missing.bin", "boot")])
    index = SimpleNamespace(flash_plan=lambda names: [SimpleNamespace(offset=0x20000, path=image, name=n) for n in names])
    assert plan_from_index(index, ["app-v1"])[0].label == "app-v1"


def test_erase_range_must_be_sector_aligned():
    check_erase_range(0x1000, 0x7000)
    for offset, size in ((0x1001, 0x1000), (0x1000, 0x800), (0x1000, 0)):
        with pytest.raises(ValueError, match="4 KiB"):
            check_erase_range(offset, size)


def test_bounded_call_times_out_and_aborts():
    aborted = threading.Event()
    with pytest.raises(FlashTimeout, match="step X on P did not finish within 0.2"):
        run_bounded(lambda: aborted.wait(10), 0.2, Sink(), abort=aborted.set,
                    describe=lambda t: f"step X on P did not finish within {t}")
    assert aborted.is_set()


def test_bounded_call_returns_value_and_reraises_errors():
    assert run_bounded(lambda: 42, 5, Sink(), abort=lambda: None, describe=str) == 42
    with pytest.raises(KeyError):
        run_bounded(lambda: {}["x"], 5, Sink(), abort=lambda: None, describe=str)


def test_esptool_output_of_our_calls_goes_to_the_sink_only():
    log = esptool_module().logger.log
    sink = Sink(on_progress=lambda done, total: seen.append((done, total)))
    seen: list[tuple[int, int]] = []

    def noisy():
        log.print("Connecting....")
        with log.progress(total=10, unit="B") as progress:
            progress.update(10)

    out = io.StringIO()
    with redirect_stdout(out):
        run_bounded(noisy, 5, sink, abort=lambda: None, describe=str)
    assert sink.transcript == ["Connecting...."] and seen[-1] == (10, 10)
    assert "Connecting" not in out.getvalue()


@pytest.fixture
def silent_server():
    """A TCP peer that accepts connections and never answers (a board that does not talk)."""
    listener = socket.create_server(("127.0.0.1", 0))
    conns = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conns.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"socket://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    listener.close()
    thread.join(5)
    for c in conns:
        c.close()


def test_connect_failure_retries_lower_baud_then_names_port_and_causes(silent_server):
    port = serial.serial_for_url(silent_server, timeout=0.1)
    try:
        session = FlashSession(port, "dut7", connect_attempts=1)
        with pytest.raises(FlashConnectError) as info:
            session.connect()
    finally:
        port.close()
    text = str(info.value)
    assert text.startswith("dut7: cannot connect to the ESP ROM loader on " + silent_server)
    assert "115200 baud" in text and "57600 baud" in text
    assert "wrong port" in text and "held in reset" in text and "another process" in text
    assert isinstance(info.value, FlashError)
