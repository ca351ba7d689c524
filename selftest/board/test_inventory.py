"""Inventory: --hil-port URLs, boards file validation, USB detection by VID:PID with by-id names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hil.board import BoardSpec, InventoryError, detect, from_urls, inventory, load_boards_file

GOOD = '''
[[board]]
name = "dut1"
port = "/dev/serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0"
chip = "esp32"
capabilities = ["reset", "sniff"]
power_command = "uhubctl -l 1-1 -p 2 -a {action}"
network_interface = "wlan1"
network_address = "192.168.4.2"

[[board]]
name = "remote"
port = "rfc2217://bench-pi:4000"
chip = "esp32c6"
'''


def write(tmp_path, text):
    path = tmp_path / "boards.toml"
    path.write_text(text)
    return path


def test_boards_file_good(tmp_path):
    dut1, remote = load_boards_file(write(tmp_path, GOOD))
    assert dut1 == BoardSpec(name="dut1", port="/dev/serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0",
                             chip="esp32", capabilities=frozenset({"reset", "sniff", "power"}),
                             power_command="uhubctl -l 1-1 -p 2 -a {action}", network_interface="wlan1",
                             network_address="192.168.4.2")
    assert remote.chip == "esp32c6" and not remote.has("power")
    assert dut1.reset_pulse is None  # not declared: esptool's timings


def test_boards_file_reset_pulse(tmp_path):
    (board,) = load_boards_file(write(tmp_path, '[[board]]\nname = "a"\nport = "/dev/x"\nreset_pulse = 0\n'))
    assert board.reset_pulse == 0.0


@pytest.mark.parametrize("text, fragment", [
    ('[[board]]\nname = "a"\nport = "/dev/x"\n[[board]]\nname = "a"\nport = "/dev/y"\n', "'a' is used twice"),
    ('[[board]]\nname = "a"\nchip = "esp32"\n', "board 'a': field 'port' is required"),
    ('[[board]]\nname = "a"\nport = "/dev/x"\nchip = "esp99"\n', "field 'chip' = 'esp99'"),
    ('[[board]]\nname = "a"\nport = "/dev/x"\nprot = 1\n', "unknown field(s) ['prot']"),
    ('[[board]]\nname = "a"\nport = "/dev/x"\ncapabilities = ["power"]\n', "needs field 'power_command'"),
    ('[[board]]\nname = "a"\nport = 5\n', "field 'port' must be a str"),
    ('[[board]]\nname = "a"\nport = "/dev/x"\ncapabilities = ["snif"]\n', "capabilities ['snif'] are unknown"),
    ('[[board]]\nport = "/dev/x"\n', "field 'name' missing"),
    ('name = "a"\n', "no [[board]] entries"),
    ('[[board]\n', "not valid TOML"),
    ('[[board]]\nname = "a"\nport = "/dev/x"\nreset_pulse = -0.1\n', "field 'reset_pulse' must be the seconds"),
    ('[[board]]\nname = "a"\nport = "/dev/x"\nreset_pulse = 100\n', "(0 to 5), got 100"),
    ('[[board]]\nname = "a"\nport = "/dev/x"\nreset_pulse = true\n', "field 'reset_pulse'"),
])
def test_boards_file_bad_names_file_board_and_field(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as info:
        load_boards_file(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_urls_named_and_unnamed():
    specs = from_urls(["rfc2217://127.0.0.1:4000", "dut=/dev/ttyUSB0", "rfc2217://h:1?timeout=3"])
    assert [(s.name, s.port) for s in specs] == [
        ("board0", "rfc2217://127.0.0.1:4000"), ("dut", "/dev/ttyUSB0"), ("board2", "rfc2217://h:1?timeout=3")]
    with pytest.raises(InventoryError, match="twice"):
        from_urls(["a=/dev/x", "a=/dev/y"])


def port_info(device, vid, pid, serial_number=None):
    return SimpleNamespace(device=device, vid=vid, pid=pid, serial_number=serial_number)


def test_detect_filters_by_vid_pid_and_prefers_by_id():
    ports = [
        port_info("/dev/ttyUSB1", 0x10C4, 0xEA60, "0001"),           # CP210x
        port_info("/dev/ttyACM0", 0x303A, 0x1001, "F4:12:FA:00:11:22"),  # ESP USB-JTAG
        port_info("/dev/ttyUSB0", 0x1A86, 0x7523),                     # CH340, no serial number
        port_info("/dev/ttyUSB2", 0x0403, 0x6015, "FT1"),              # FTDI FT-X
        port_info("/dev/ttyS0", None, None),                            # built-in UART: not a board
        port_info("/dev/ttyACM1", 0x2341, 0x0043, "arduino"),          # unknown USB device
    ]
    links = {"/dev/ttyUSB1": "/dev/serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0"}
    specs = detect(lambda: ports, lambda: links)
    assert [(s.name, s.port) for s in specs] == [
        ("esp-usb-jtag-F4_12_FA_00_11_22", "/dev/ttyACM0"),
        ("ch340-ttyUSB0", "/dev/ttyUSB0"),
        ("cp210x-0001", "/dev/serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0"),
        ("ft-x-FT1", "/dev/ttyUSB2"),
    ]
    assert all(s.chip == "auto" and s.has("reset") for s in specs)


def test_detect_keeps_names_unique_for_dual_port_bridges():
    ports = [port_info("/dev/ttyUSB0", 0x0403, 0x6010, "X"), port_info("/dev/ttyUSB1", 0x0403, 0x6010, "X")]
    assert [s.name for s in detect(lambda: ports, dict)] == ["ft2232-X", "ft2232-X-1"]


def test_inventory_precedence(tmp_path):
    detected = [BoardSpec("usb0", "/dev/ttyUSB0")]
    assert inventory([], None, lambda: detected) == detected
    assert [s.name for s in inventory(["rfc2217://h:1"], write(tmp_path, GOOD), lambda: detected)] == \
        ["board0", "dut1", "remote"]
    assert inventory([], None, lambda: []) == []
