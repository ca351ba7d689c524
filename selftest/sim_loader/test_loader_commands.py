"""The ROM and stub command sets, frame by frame, including every error path."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from hil.sim.loader import protocol as p

from .loader_harness import LoaderRig, block, parse, request

SYNC = request(p.SYNC, p.SYNC_PAYLOAD)
ROM_OK = b"\x00\x00\x00\x00"


def rom_error(code: int) -> bytes:
    return bytes((1, code, 0, 0))


@pytest.fixture
def rig():
    return LoaderRig()


def test_sync_is_answered_eight_times_with_a_nonzero_rom_value(rig):
    out = rig.send(SYNC)
    assert len(out) == 8
    op, value, _, data = parse(out[0])
    assert (op, data) == (p.SYNC, ROM_OK) and value != 0


def test_stub_sync_value_is_zero_and_status_is_two_bytes(rig):
    rig.start_stub()
    out = rig.send(SYNC)
    assert len(out) == 8 and parse(out[0])[1] == 0 and parse(out[0])[3] == b"\x00\x00"


def test_read_reg_chip_magic_and_mac_words(rig):
    (magic,) = rig.send(request(p.READ_REG, struct.pack("<I", 0x40001000)))
    assert parse(magic)[1] == 0x00F01D83
    w1, w2 = (parse(rig.send(request(p.READ_REG, struct.pack("<I", a)))[0])[1] for a in (0x3FF5A004, 0x3FF5A008))
    assert struct.pack(">II", w2, w1)[2:] == rig.efuses.mac


def test_spi_user_command_rdid_via_registers(rig):
    base = 0x3FF42000
    writes = [(base + 0x2C, 23), (base + 0x1C, (1 << 31) | (1 << 28)), (base + 0x24, (7 << 28) | 0x9F),
              (base + 0x80, 0), (base, 1 << 18)]
    for addr, value in writes:
        rig.send(request(p.WRITE_REG, struct.pack("<IIII", addr, value, 0xFFFFFFFF, 0)))
    (cmd,) = rig.send(request(p.READ_REG, struct.pack("<I", base)))
    assert parse(cmd)[1] & (1 << 18) == 0
    (w0,) = rig.send(request(p.READ_REG, struct.pack("<I", base + 0x80)))
    assert parse(w0)[1] == 0x1640EF


@pytest.mark.parametrize("frame, code", [
    (b"\x00\x08", p.ROM_INVALID_MESSAGE),                                  # shorter than a header
    (b"\x01" + request(p.SYNC, p.SYNC_PAYLOAD)[1:], p.ROM_INVALID_MESSAGE),  # wrong direction byte
    (request(p.READ_REG, b"\x00" * 4)[:-1], p.ROM_INVALID_MESSAGE),        # length field lies
    (request(0x42), p.ROM_INVALID_MESSAGE),                                # unknown op
    (request(p.ERASE_FLASH), p.ROM_INVALID_MESSAGE),                       # stub-only op in ROM
    (request(p.READ_REG, b"\x00" * 3), p.ROM_INVALID_MESSAGE),             # bad payload size
    (request(p.SYNC, b"\x07\x07"), p.ROM_INVALID_MESSAGE),                 # bad sync payload
])
def test_bad_requests_get_the_rom_error_reply(rig, frame, code):
    (resp,) = rig.send(frame)
    assert parse(resp)[3] == rom_error(code)


def test_security_info_unsupported_on_esp32_and_answered_on_c6():
    (resp,) = LoaderRig("esp32").send(request(p.GET_SECURITY_INFO))
    assert parse(resp)[0] == p.GET_SECURITY_INFO and parse(resp)[3][:2] == b"\x01\x05"
    (resp,) = LoaderRig("esp32c6").send(request(p.GET_SECURITY_INFO))
    data = parse(resp)[3]
    assert len(data) == 24 and struct.unpack_from("<I", data, 12)[0] == 13 and data[20:] == ROM_OK


def test_rom_flash_write_bad_checksum_then_retry_and_md5_hex(rig):
    body = bytes([0xC0, 0xDB, 0xFF]) * 0x155 + b"\xc0"
    assert len(body) == 0x400
    begin = request(p.FLASH_BEGIN, struct.pack("<IIII", 0x400, 1, 0x400, 0x2000))
    out = rig.send(begin, block(p.FLASH_DATA, 0, body, chk=0x00 if p.checksum(body) else 1),
                   block(p.FLASH_DATA, 0, body))
    assert [parse(r)[3] for r in out] == [ROM_OK, rom_error(p.ROM_BAD_CHECKSUM), ROM_OK]
    assert rig.flash.read(0x2000, 0x400) == body
    (md5,) = rig.send(request(p.SPI_FLASH_MD5, struct.pack("<IIII", 0x2000, 0x400, 0, 0)))
    assert parse(md5)[3] == hashlib.md5(body).hexdigest().encode() + ROM_OK


def test_deflate_write_and_deflate_error(rig):
    data = bytes([0xFF, 0xC0]) * 0x1000
    packed = zlib.compress(data)
    begin = request(p.FLASH_DEFL_BEGIN, struct.pack("<IIII", len(data), 1, 0x400, 0x4000))
    out = rig.send(begin, block(p.FLASH_DEFL_DATA, 0, packed))
    assert [parse(r)[3] for r in out] == [ROM_OK, ROM_OK]
    assert rig.flash.read(0x4000, len(data)) == data
    out = rig.send(begin, block(p.FLASH_DEFL_DATA, 0, b"not zlib at all"))
    assert parse(out[1])[3] == rom_error(p.ROM_DEFLATE_ERR)


def test_flash_data_without_begin_is_refused(rig):
    (resp,) = rig.send(block(p.FLASH_DATA, 0, b"\x00" * 16))
    assert parse(resp)[3][:1] == b"\x01"


def test_stub_dialect_md5_raw_erase_region_and_errors(rig):
    rig.flash.write(0x1000, b"\x00" * 16)
    rig.start_stub()
    (md5,) = rig.send(request(p.SPI_FLASH_MD5, struct.pack("<IIII", 0x1000, 16, 0, 0)))
    assert parse(md5)[3] == hashlib.md5(b"\x00" * 16).digest() + b"\x00\x00"
    (ok,) = rig.send(request(p.ERASE_REGION, struct.pack("<II", 0x1000, 0x1000)))
    assert parse(ok)[3] == b"\x00\x00" and rig.flash.read(0x1000, 16) == b"\xff" * 16
    (bad,) = rig.send(request(p.ERASE_REGION, struct.pack("<II", 0x1800, 0x1000)))
    assert parse(bad)[3] == bytes((p.STUB_BAD_DATA_LEN, 0))
    (unknown,) = rig.send(request(0x42))
    assert parse(unknown)[3] == bytes((p.STUB_INVALID_COMMAND, 0))
    (rom_only,) = rig.send(request(p.READ_FLASH_SLOW, struct.pack("<II", 0, 64)))
    assert parse(rom_only)[3] == bytes((p.STUB_INVALID_COMMAND, 0))


def test_loader_stale_md5_defect_is_wrong_until_the_first_write():
    rig = LoaderRig(defects=("loader-stale-md5",))
    md5_request = request(p.SPI_FLASH_MD5, struct.pack("<IIII", 0, 0x1000, 0, 0))
    right = hashlib.md5(b"\xff" * 0x1000).hexdigest().encode()
    (stale,) = rig.send(md5_request)
    assert parse(stale)[3][:32] != right
    rig.flash.erase(0x10000, 0x1000)  # any write or erase refreshes the "cache"
    (fresh,) = rig.send(md5_request)
    assert parse(fresh)[3][:32] == right


def test_stub_read_flash_streams_with_acks_and_md5(rig):
    payload = bytes(range(256)) * 48    # 12 KiB, 0xFF and 0xC0 inside
    rig.flash.write(0x8000, payload)
    rig.start_stub()
    cmd = request(p.READ_FLASH, struct.pack("<IIII", 0x8000, len(payload), 0x1000, 2))
    acks = [struct.pack("<I", n) for n in (0x1000, 0x2000, 0x3000)]
    out = rig.send(cmd, *acks)
    assert parse(out[0])[3] == b"\x00\x00"
    assert b"".join(out[1:4]) == payload and out[4] == hashlib.md5(payload).digest()


def test_stub_read_flash_respects_the_inflight_window(rig):
    rig.start_stub()
    out = rig.send(request(p.READ_FLASH, struct.pack("<IIII", 0, 0x4000, 0x1000, 2)))
    assert len(out) == 1 + 2   # reply + two blocks, then it waits for an ack


def test_rom_read_flash_slow_returns_64_bytes(rig):
    rig.flash.write(0, b"\x12\x34")
    (resp,) = rig.send(request(p.READ_FLASH_SLOW, struct.pack("<II", 0, 2)))
    assert parse(resp)[3][:2] == b"\x12\x34" and len(parse(resp)[3]) == 64 + 4


def test_change_baud_and_flash_end_leave(rig):
    rig.send(request(p.CHANGE_BAUDRATE, struct.pack("<II", 921600, 0)))
    assert rig.io.baudrate == 921600
    rig.send(request(p.FLASH_END, struct.pack("<I", 1)))
    assert rig.left is not None and rig.left.reboot is False
    rig.send(request(p.FLASH_END, struct.pack("<I", 0)))
    assert rig.left.reboot is True


def test_flash_begin_past_end_of_flash_is_refused(rig):
    (resp,) = rig.send(request(p.FLASH_BEGIN, struct.pack("<IIII", 0x2000, 8, 0x400, 0x3FF000)))
    assert parse(resp)[3][:1] == b"\x01"
