"""The MCUboot codec against imgtool output, and the ESP32 image reader against esptool output."""

from __future__ import annotations

from esptool.bin_image import ELFSection, ESP32FirmwareImage

from hil.images import mcuboot as mb
from hil.images.app_desc import find_app_desc
from hil.images.bootloader_key import find_key_block, pack_key_block
from hil.sim.boot.esp_image import ImageFault, parse_esp_image


def test_parses_imgtool_signed_image(artifacts):
    image = artifacts.images["v2"]
    parsed = mb.parse_image(image)
    header = parsed.header
    assert header.magic_ok and header.hdr_size == 0x200 and header.version[:3] == (2, 0, 0)
    assert parsed.tlv(mb.TLV_SHA256) == mb.image_hash(image, header)
    assert parsed.tlv(mb.TLV_KEYHASH) == mb.key_hash(artifacts.trusted_der)
    signature = parsed.tlv(mb.TLV_RSA2048_PSS)
    signed = image[: header.signed_size]
    assert len(signature) == 256 and mb.verify_pss(artifacts.trusted_der, signed, signature)
    assert not mb.verify_pss(artifacts.attacker_der, signed, signature)
    assert parsed.total_size == len(image)
    payload = image[header.hdr_size: header.hdr_size + header.img_size]
    assert find_app_desc(payload).version == "2.0.0"


def test_variants_carry_what_imgtool_wrote(artifacts):
    other = mb.parse_image(artifacts.images["other-key"])
    assert other.tlv(mb.TLV_PUBKEY) == artifacts.attacker_der and other.tlv(mb.TLV_KEYHASH) is None
    unsigned = mb.parse_image(artifacts.images["unsigned"])
    assert unsigned.tlv(mb.TLV_RSA2048_PSS) is None and unsigned.tlv(mb.TLV_SHA256)
    assert not mb.parse_header(artifacts.images["bad-magic"]).magic_ok


def test_truncated_image_has_no_tlv_area(artifacts):
    try:
        mb.parse_image(artifacts.images["truncated"])
    except mb.McubootFormatError as exc:
        assert "TLV" in str(exc)
    else:
        raise AssertionError("a truncated image parsed")


def test_trailer_offsets_match_imgtool_pad(artifacts):
    tail = artifacts.images["v2-pad-confirm"][-mb.trailer_tail_size():]
    state = mb.parse_trailer(tail)
    assert (state.magic, state.image_ok, state.copy_done) == \
        (mb.MagicState.GOOD, mb.Flag.SET, mb.Flag.UNSET)
    assert len(artifacts.images["v2-pad-test"]) == 0x150000


def test_esp_image_reader_accepts_esptool_images(tmp_path):
    image = ESP32FirmwareImage()
    image.entrypoint, image.flash_mode, image.flash_size_freq = 0x40080400, 2, 0x20
    image.min_rev_full, image.max_rev_full, image.append_digest = 0, 399, True
    key_block = pack_key_block(b"\x30\x82" + b"k" * 40)
    image.segments = [ELFSection(b".dram0.data", 0x3FFF0030, key_block.ljust(128, b"\0"), 0),
                      ELFSection(b".iram0.text", 0x40078000, b"\x36\x41" * 64, 0)]
    image.save(str(tmp_path / "bootloader.bin"))
    data = (tmp_path / "bootloader.bin").read_bytes()
    parsed = parse_esp_image(data)
    assert parsed.ok and parsed.entry == 0x40080400 and parsed.length == len(data)
    assert find_key_block(parsed.segments[0].data) == b"\x30\x82" + b"k" * 40
    tampered = bytearray(data)
    tampered[len(data) - 1] ^= 1
    assert parse_esp_image(bytes(tampered)).fault is ImageFault.BAD_HASH
    assert parse_esp_image(b"\xff" * 64).fault is ImageFault.BAD_MAGIC
