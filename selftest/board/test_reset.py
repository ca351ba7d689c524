"""Reset as data: the boards file's ``reset`` and ``flash_baud``, ``auto`` resolved from the USB
bridge or the URL, esptool's own reset classes driving the lines, and ``none`` refusing to reset."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from serial.urlhandler.protocol_loop import Serial as LoopSerial

from hil.board import BoardSpec, InventoryError, detect, load_boards_file
from hil.board.reset import (
    HARDWARE_FLOW_CONTROL_VID_PIDS,
    USB_JTAG_SERIAL_PID,
    EsptoolReset,
    ResetPlan,
    check_reset,
    resolve_reset,
)
from hil.board.spec import DEFAULT_FLASH_BAUD


def write(tmp_path, body: str):
    path = tmp_path / "boards.toml"
    path.write_text('[[board]]\nname = "a"\n' + body)
    return path


@pytest.mark.parametrize("value", ["auto", "classic", "unix-tight", "usb-jtag", "none", "D0|R1|W0.1|D1|R0|W0.05|D0"])
def test_boards_file_takes_reset_kinds_and_custom_sequences(tmp_path, value):
    (spec,) = load_boards_file(write(tmp_path, f'port = "/dev/ttyUSB0"\nreset = "{value}"\nflash_baud = 460800\n'))
    assert spec.reset == value and spec.flash_baud == 460800


def test_boards_file_defaults():
    assert BoardSpec("a", "/dev/x").reset == "auto"
    assert BoardSpec("a", "/dev/x").flash_baud == DEFAULT_FLASH_BAUD == 921600


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('port = "/dev/x"\nreset = "hard"\n', "field 'reset': 'hard' is neither one of"),
        ('port = "/dev/x"\nreset = "D0|R2"\n', "'R2'"),
        ('port = "/dev/x"\nreset = "D0|X1"\n', "'X1'"),
        ('port = "rfc2217://h:1"\nreset = "unix-tight"\n', "needs a local serial device"),
        ('port = "/dev/x"\nreset = "usb-jtag"\nreset_pulse = 0.1\n', "does not apply to reset = 'usb-jtag'"),
        ('port = "/dev/x"\nflash_baud = -1\n', "field 'flash_baud' must be a baud rate"),
        ('port = "/dev/x"\nflash_baud = "fast"\n', "field 'flash_baud' must be a int"),
    ],
)
def test_bad_reset_and_flash_baud_name_file_board_and_field(tmp_path, body, fragment):
    path = write(tmp_path, body)
    with pytest.raises(InventoryError) as info:
        load_boards_file(path)
    assert fragment in str(info.value) and str(path) in str(info.value) and "board 'a'" in str(info.value)


def test_check_reset_uses_esptools_parser():
    assert check_reset("D0|R1|W0.1|D1|R0|W0.05|D0") is None
    assert "empty custom reset sequence" in (check_reset("|") or "")


@pytest.mark.parametrize(
    "port, ids, kind, chooses, flow",
    [
        ("/dev/ttyACM0", (0x303A, 0x1001), "usb-jtag", False, False),  # ESP USB-Serial/JTAG
        ("/dev/ttyUSB0", (0x10C4, 0xEA60), "unix-tight", True, False),  # CP2102: esptool's list on POSIX
        ("/dev/ttyUSB0", (0x10C4, 0xEA64), "unix-tight", True, True),  # CP2102C: flow-control variants
        ("/dev/ttyACM0", (0x303A, 0x0002), "unix-tight", True, False),  # S3 USB-OTG CDC: esptool's default
        ("/dev/ttyUSB9", None, "unix-tight", True, False),  # unknown bridge
        ("rfc2217://bench:4000", None, "classic", False, False),
        ("socket://bench:4000", None, "none", False, False),  # no lines at all
    ],
)
def test_auto_follows_the_bridge_or_url(port, ids, kind, chooses, flow):
    plan = resolve_reset(BoardSpec("a", port), vid_pid=lambda _: ids)
    assert (plan.kind, plan.esptool_chooses, plan.flow_control) == (kind, chooses, flow), plan


def test_explicit_and_custom_resets_and_a_bad_combination():
    assert resolve_reset(BoardSpec("a", "rfc2217://h:1", reset="classic")).kind == "classic"
    custom = resolve_reset(BoardSpec("a", "rfc2217://h:1", reset="D0|R1|R0"))
    assert (custom.kind, custom.sequence) == ("custom", "D0|R1|R0")
    with pytest.raises(ValueError, match="board a: reset = 'unix-tight' needs a local serial device"):
        resolve_reset(BoardSpec("a", "rfc2217://h:1", reset="unix-tight"))


def test_numbers_copied_from_esptool_still_match():
    from esp_pylib import constants

    assert USB_JTAG_SERIAL_PID == constants.USB_JTAG_SERIAL_PID
    assert set(HARDWARE_FLOW_CONTROL_VID_PIDS) == set(constants.HARDWARE_FLOW_CONTROL_VID_PIDS)


def test_new_usb_bridges_are_detected():
    ports = [
        SimpleNamespace(device=f"/dev/ttyUSB{i}", vid=vid, pid=pid, serial_number=f"S{i}")
        for i, (vid, pid) in enumerate([(0x1A86, 0x55D3), (0x10C4, 0xEA64), (0x10C4, 0xEA70), (0x303A, 0x0002)])
    ]
    assert [s.name for s in detect(lambda: ports, dict)] == ["ch343-S0", "cp2102c-S1", "cp2105-S2", "esp-usb-otg-S3"]


class RecordingLoop(LoopSerial):
    """Loopback port that records every DTR/RTS write."""

    def __init__(self, *args, **kwargs):
        self.writes: list[tuple[str, bool]] = []
        self.lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _update_rts_state(self):
        self.writes.append(("rts", self._rts_state))

    def _update_dtr_state(self):
        self.writes.append(("dtr", self._dtr_state))


def test_custom_sequence_runs_through_esptools_custom_reset():
    port = RecordingLoop("loop://")
    try:
        port.writes.clear()
        EsptoolReset(port, ResetPlan("custom", "test", "D0|R1|D1|R0")).enter_download()
        # esptool's set_rts re-writes DTR after every RTS change (its usbser.sys workaround): the
        # sequence ran through esptool's code, not a copy of it
        assert port.writes == [
            ("dtr", False),
            ("rts", True),
            ("dtr", False),
            ("dtr", True),
            ("rts", False),
            ("dtr", True),
        ]
    finally:
        port.close()


def test_hard_reset_is_esptools_rts_pulse():
    port = RecordingLoop("loop://")
    try:
        port.dtr = False
        port.writes.clear()
        EsptoolReset(port, ResetPlan("classic", "test")).hard_reset()
        assert port.writes == [("rts", True), ("dtr", False), ("rts", False), ("dtr", False)]
    finally:
        port.close()
