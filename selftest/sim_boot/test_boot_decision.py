"""The boot decision table: ROM second stage and MCUboot validation of the primary slot, and the
row each defect flips."""

from __future__ import annotations

import itertools

import pytest

from hil.images.layout import layout_for
from hil.sim.boot.validate import validate_slot
from hil.sim.defects import DefectSet
from sim_boot.fakes import FakeFlash, boot, install, make_bootloader, _write

BAD_VARIANTS = ("unsigned", "other-key", "bitflip", "truncated", "bad-magic")
MCUBOOT_DEFECTS = ("mcuboot-accept-unsigned", "mcuboot-skip-hash", "mcuboot-trust-embedded-key",
                   "mcuboot-ignore-magic", "mcuboot-ignore-size")
# (variant, defect) pairs that boot; every other combination of a bad variant must be refused.
FLIPPED = {
    ("unsigned", "mcuboot-accept-unsigned"), ("other-key", "mcuboot-accept-unsigned"),
    ("unsigned", "mcuboot-skip-hash"), ("other-key", "mcuboot-skip-hash"),
    ("bitflip", "mcuboot-skip-hash"), ("other-key", "mcuboot-trust-embedded-key"),
    ("bad-magic", "mcuboot-ignore-magic"), ("truncated", "mcuboot-ignore-size"),
}


def slot_bytes(image: bytes) -> bytes:
    return image + b"\xff" * (layout_for("esp32").slot_size - len(image))


def test_valid_image_boots_to_its_version(flash, artifacts):
    rt = boot(flash)
    assert "[esp32] [INF] *** Booting MCUboot build v2.1.0 ***" in rt.lines
    assert "[esp32] [INF] Loading image 0 - slot 0 from flash, area id: 1" in rt.lines
    assert "Firmware Version: 1.0.0" in rt.text and "Calling app_main()" in rt.text
    assert rt.lines[0] == "configsip: 0, SPIWP:0xee" and rt.lines[5].startswith("entry 0x")


@pytest.fixture
def flash(flash, artifacts):
    install(flash, artifacts)
    return flash


@pytest.mark.parametrize("variant", BAD_VARIANTS)
def test_bad_primary_is_refused_and_nothing_runs(variant, artifacts):
    flash = FakeFlash()
    install(flash, artifacts, primary=variant)
    rt = boot(flash)
    assert "[esp32] [ERR] Image in the primary slot is not valid!" in rt.lines
    assert "[esp32] [ERR] Unable to find bootable image" in rt.lines
    assert "Calling app_main" not in rt.text and "Firmware Version" not in rt.text


@pytest.mark.parametrize("variant,defect", itertools.product(("v2", *BAD_VARIANTS),
                                                             ("", *MCUBOOT_DEFECTS)))
def test_validation_matrix(variant, defect, artifacts):
    verdict = validate_slot(slot_bytes(artifacts.images[variant]), artifacts.trusted_der,
                            DefectSet([defect] if defect else []))
    expected = variant == "v2" or (variant, defect) in FLIPPED
    assert verdict.valid is expected, verdict.reason


@pytest.mark.parametrize("variant,defect", sorted(FLIPPED))
def test_each_defect_boots_its_variant(variant, defect, artifacts):
    flash = FakeFlash()
    install(flash, artifacts, primary=variant)
    rt = boot(flash, defects=(defect,))
    assert "Calling app_main()" in rt.text and "not valid" not in rt.text


def test_key_not_trusted_by_bootloader_refuses_good_image(artifacts):
    flash = FakeFlash()
    install(flash, artifacts)
    _write(flash, 0x1000, make_bootloader(artifacts.attacker_der))
    assert "Image in the primary slot is not valid!" in boot(flash).text


def test_erased_bootloader_repeats_invalid_header(artifacts):
    flash = FakeFlash()
    install(flash, artifacts, bootloader=False)
    rt = boot(flash)
    assert rt.lines.count("invalid header: 0xffffffff") == rt.waits >= 2
    assert "MCUboot" not in rt.text and "app_main" not in rt.text


def test_rom_defect_runs_primary_without_bootloader(artifacts):
    flash = FakeFlash()
    install(flash, artifacts, primary="unsigned", bootloader=False)
    rt = boot(flash, defects=("rom-boots-without-bootloader",))
    assert "MCUboot" not in rt.text and "Firmware Version: 2.0.0" in rt.text


def test_bootloader_checksum_error_is_reported(artifacts):
    flash = FakeFlash()
    install(flash, artifacts)
    image = bytearray(artifacts.bootloader)
    image[24 + 8 + 40] ^= 0x10  # inside the first segment's data
    _write(flash, 0x1000, bytes(image))
    rt = boot(flash)
    assert rt.lines[0].startswith("csum err:0x") and "MCUboot" not in rt.text


def test_esp32c6_boots_from_offset_zero(artifacts):
    from hil.sim.boot import run_from_flash
    from hil.sim.firmware import run_app
    from hil.sim.runtime import Halted
    from sim_boot.fakes import FakeRuntime

    flash = FakeFlash()
    install(flash, artifacts, bootloader=False)
    _write(flash, 0x0, make_bootloader(artifacts.trusted_der, chip_id=13))
    rt = FakeRuntime(flash, chip="esp32c6")
    with pytest.raises(Halted):
        run_from_flash(rt, run_app)
    assert "[esp32c6] [INF] *** Booting MCUboot build v2.1.0 ***" in rt.lines
    assert rt.lines[0] == "SPIWP:0xee" and "load:0x3fff0030,len:0x400" in rt.lines
    assert "Firmware Version: 1.0.0" in rt.text
