"""SLIP framing, the loader checksum, NOR flash semantics and eFuse/MAC persistence."""

from __future__ import annotations

import pytest

from hil.sim import slip
from hil.sim.chips import chip_spec
from hil.sim.efuse import Efuses, derive_mac, format_mac, parse_mac
from hil.sim.flash import NorFlash
from hil.sim.loader.protocol import checksum

NASTY = bytes([0xC0, 0xDB, 0xDC, 0xDD, 0xFF, 0x00, 0xDB, 0xC0]) * 3


def test_slip_encode_escapes_end_and_esc():
    assert slip.encode(b"\xc0\xdb\x01") == b"\xc0\xdb\xdc\xdb\xdd\x01\xc0"


def test_slip_round_trip_of_escape_heavy_data():
    assert slip.SlipDecoder().feed(slip.encode(NASTY)) == [NASTY]


def test_slip_frames_split_at_every_byte_boundary():
    stream = slip.encode(NASTY) + slip.encode(b"second")
    for cut in range(1, len(stream)):
        dec = slip.SlipDecoder()
        assert dec.feed(stream[:cut]) + dec.feed(stream[cut:]) == [NASTY, b"second"], cut


def test_slip_noise_before_first_frame_is_dropped_and_shared_delimiter_works():
    dec = slip.SlipDecoder()
    assert dec.feed(b"garbage\xc0a\xc0b\xc0\xc0c\xc0") == [b"a", b"b", b"c"]


def test_slip_invalid_escape_drops_frame():
    dec = slip.SlipDecoder()
    assert dec.feed(b"\xc0\xdb\x01\xc0\xc0ok\xc0") == [b"ok"]
    assert dec.bad_frames == 1


def test_checksum_matches_rom_definition():
    data = bytes(range(256)) * 7 + b"\x01\x02\x03"
    expected = 0xEF
    for b in data:
        expected ^= b
    assert checksum(data) == expected
    assert checksum(b"") == 0xEF


def test_nor_write_ands_and_erase_sets_ff(tmp_path):
    with NorFlash(tmp_path / "flash.bin") as flash:
        assert flash.read(0, 4) == b"\xff" * 4
        flash.write(0x10, b"\xf0\x0f")
        flash.write(0x10, b"\x3c\x3c")
        assert flash.read(0x10, 2) == b"\x30\x0c"
        flash.erase(0, 0x1000)
        assert flash.read(0x10, 2) == b"\xff\xff"
        assert (flash.bytes_written, flash.bytes_erased) == (4, 0x1000)


def test_nor_unaligned_erase_and_out_of_range_rejected(tmp_path):
    with NorFlash(None) as flash:
        with pytest.raises(ValueError, match="aligned"):
            flash.erase(0x800, 0x1000)
        with pytest.raises(ValueError, match="outside"):
            flash.write(flash.size - 1, b"ab")


def test_nor_persists_across_reopen(tmp_path):
    with NorFlash(tmp_path / "flash.bin") as flash:
        flash.write(0x3FF000, b"persist")
    with NorFlash(tmp_path / "flash.bin") as flash:
        assert flash.read(0x3FF000, 7) == b"persist"
        assert flash.read(0, 1) == b"\xff"


def test_mac_derived_from_state_dir_is_stable_and_distinct(tmp_path):
    chip = chip_spec("esp32")
    a1 = derive_mac(chip, tmp_path / "a")
    assert a1 == derive_mac(chip, tmp_path / "a")
    assert a1 != derive_mac(chip, tmp_path / "b")
    assert a1[:3] == b"\x24\x0a\xc4"


def test_efuses_persist_and_refuse_a_different_mac(tmp_path):
    chip = chip_spec("esp32c6")
    first = Efuses.load_or_create(chip, tmp_path)
    assert Efuses.load_or_create(chip, tmp_path).mac == first.mac
    with pytest.raises(ValueError, match="burned"):
        Efuses.load_or_create(chip, tmp_path, parse_mac("60:55:f9:00:00:01"))
    with pytest.raises(ValueError, match="esp32c6"):
        Efuses.load_or_create(chip_spec("esp32"), tmp_path)
    first.burn("SECURE_VERSION", 2)
    assert Efuses.load_or_create(chip, tmp_path).fields["SECURE_VERSION"] == 2


def test_parse_mac_rejects_garbage():
    assert format_mac(parse_mac("24-0A-C4-00-11-22")) == "24:0a:c4:00:11:22"
    for bad in ("24:0a:c4", "zz:0a:c4:00:11:22", "25:0a:c4:00:11:22"):
        with pytest.raises(ValueError):
            parse_mac(bad)
