"""Timing profiles: bounds derived from the chip and the sizes moved, the virtual board's own profile,
and a boards file's ``timing`` field (a name or a table of overridden figures)."""

from __future__ import annotations

import pytest

from hil.board import BoardSpec, InventoryError, load_boards_file
from hil.board.timing import MIB, PROFILES, TimingError, board_timing, timing_profile

SLOT = 0x150000  # the default layout's slot (hil.images.layout)
CHUNK = 2048  # PROTOCOL.md: chunk_size


def test_virtual_profile_keeps_the_bounds_the_suite_was_sized_for():
    virtual = PROFILES["virtual"]
    assert virtual.boot(MIB) == 10.0
    assert virtual.step() == 10.0
    assert virtual.upload() == 15.0
    assert 30.0 <= virtual.download(MIB, CHUNK) < 40.0  # 512 loopback chunks, loaded runner


@pytest.mark.parametrize("chip", ["esp32", "esp32c6"])
def test_real_chip_download_bound_covers_one_tls_connection_per_chunk(chip):
    real = PROFILES[chip]
    chunks = MIB // CHUNK
    # one handshake per chunk: the virtual board's 30 s would cut a real 1 MiB update short by minutes
    assert real.download(MIB, CHUNK) >= chunks * real.tls_handshake
    assert real.download(MIB, CHUNK) > 10 * PROFILES["virtual"].download(MIB, CHUNK)


def test_swap_bound_grows_with_the_slot_and_covers_three_passes_per_sector():
    real = PROFILES["esp32"]
    sectors = SLOT // 4096
    assert real.swap(SLOT) >= sectors * 3 * (real.sector_erase + real.sector_write)
    assert real.swap(2 * SLOT) > real.swap(SLOT)
    assert PROFILES["virtual"].swap(SLOT) == 10.0


def test_esp32c6_handshakes_are_slower_than_esp32s():
    assert PROFILES["esp32c6"].chunk(CHUNK) > PROFILES["esp32"].chunk(CHUNK)
    assert PROFILES["esp32c6"].upload() > PROFILES["esp32"].upload()


def test_auto_follows_the_chip_and_unknown_chips_take_esp32_figures():
    assert timing_profile("auto", "esp32c6") is PROFILES["esp32c6"]
    assert timing_profile("auto", "esp32s3") is PROFILES["esp32"]
    assert timing_profile("virtual", "esp32c6") is PROFILES["virtual"]
    with pytest.raises(TimingError, match="'esp33'.*auto or one of"):
        timing_profile("esp33")


def test_overrides_replace_figures_and_are_validated():
    slow_ap = timing_profile("esp32", overrides={"network_up": 20.0})
    assert slow_ap.network() == 60.0 and slow_ap.name == "esp32+overrides"
    with pytest.raises(TimingError, match="unknown timing figure.*'netwrk_up'"):
        timing_profile("esp32", overrides={"netwrk_up": 20.0})
    with pytest.raises(TimingError, match="'verify' must be a positive number"):
        timing_profile("esp32", overrides={"verify": 0})


def test_describe_prints_every_phase_with_its_bound():
    line = PROFILES["esp32"].describe(image_size=MIB, slot_size=SLOT)
    for phase in ("boot (1024 KiB image)", "network up", "swap (1344 KiB slot)", "OTA download", "upload cycle"):
        assert phase in line
    assert line.startswith("esp32: ")


def test_boards_file_timing_name_or_table(tmp_path):
    path = tmp_path / "boards.toml"
    path.write_text(
        '[[board]]\nname = "c6"\nport = "/dev/ttyACM0"\nchip = "esp32c6"\n'
        '[[board]]\nname = "slow"\nport = "/dev/ttyUSB0"\nchip = "esp32"\n'
        'timing = { profile = "esp32", tls_handshake = 2.5 }\n'
    )
    c6, slow = load_boards_file(path)
    assert board_timing(c6) is PROFILES["esp32c6"]
    assert slow.timing_overrides == (("tls_handshake", 2.5),)
    assert board_timing(slow).chunk(CHUNK) > PROFILES["esp32"].chunk(CHUNK)
    assert board_timing(BoardSpec(name="v", port="loop://", timing="virtual")) is PROFILES["virtual"]


def test_boards_file_timing_errors_name_board_and_figure(tmp_path):
    path = tmp_path / "boards.toml"
    path.write_text('[[board]]\nname = "dut"\nport = "/dev/ttyUSB0"\ntiming = { profile = "esp32", boot = 3 }\n')
    with pytest.raises(InventoryError, match=r"board 'dut': timing 'esp32': unknown timing figure\(s\) \['boot'\]"):
        load_boards_file(path)
    path.write_text('[[board]]\nname = "dut"\nport = "/dev/ttyUSB0"\ntiming = 3\n')
    with pytest.raises(InventoryError, match="board 'dut': field 'timing' must be a profile name or a table"):
        load_boards_file(path)


def test_a_boards_description_has_its_flash_bound_at_its_own_baud_and_its_chips_slot():
    from hil.board.timing import describe_board_timing
    from hil.flashing.timing import FlashTiming

    fast = describe_board_timing(BoardSpec(name="c6", port="/dev/ttyACM0", chip="esp32c6", flash_baud=921600))
    slow = describe_board_timing(BoardSpec(name="old", port="/dev/ttyUSB0", chip="esp32", flash_baud=0))
    assert f"flash (1024 KiB at 921600 baud) {FlashTiming(921600).write_bound(MIB):.1f} s" in fast
    assert f"flash (1024 KiB at 115200 baud) {FlashTiming(115200).write_bound(MIB):.1f} s" in slow
    assert f"swap ({SLOT // 1024} KiB slot)" in slow and fast.startswith("esp32c6: ")
