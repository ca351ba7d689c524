"""Firmware profiles: the shipped profiles match the contract lines; loading errors are precise."""

from __future__ import annotations

import pytest

from hil.console import ProfileError, UnknownEventError, builtin_profiles, load_profile, strip_ansi

# (event, line the virtual board emits, expected fields) — the shared contract table
CONTRACT = [
    ("rom.reset", "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
     {"code": "0x1", "cause": "POWERON_RESET", "boot": "0x13", "mode": "SPI_FAST_FLASH_BOOT"}),
    ("rom.download", "waiting for download", {}),
    ("rom.invalid_header", "invalid header: 0xffffffff", {"value": "0xffffffff"}),
    ("boot.mcuboot", "[esp32] [INF] *** Booting MCUboot build v2.1.0 ***", {"build": "v2.1.0"}),
    ("boot.validated", "[esp32] [INF] Loading image 0 - slot 0 from flash, area id: 1", {"index": "0", "slot": "0"}),
    ("boot.swap", "[esp32] [INF] Image index: 0, Swap type: test", {"index": "0", "swap_type": "test"}),
    ("boot.refused", "[esp32] [ERR] Image in the primary slot is not valid!", {"slot": "primary"}),
    ("boot.no_image", "[esp32] [ERR] Unable to find bootable image", {}),
    ("boot.trailer", "[esp32] [INF] Primary image: magic=good, swap_type=0x2, copy_done=0x1, image_ok=0x3",
     {"area": "Primary image", "magic": "good", "swap_type": "2", "copy_done": "1", "image_ok": "3"}),
    ("boot.source", "[esp32] [INF] Boot source: primary slot", {"source": "primary slot"}),
    ("boot.swapping", "[esp32] [INF] Starting swap using scratch algorithm.", {"algorithm": "scratch"}),
    # other builds of MCUboot: Zephyr's banner and log prefix, and the swap line before "Image index"
    ("boot.mcuboot", "*** Booting MCUboot v2.1.0-ncs1 ***", {"build": "v2.1.0-ncs1"}),
    ("boot.swap", "I: Swap type: test", {"swap_type": "test"}),
    ("app.started", "I (312) main_task: Calling app_main()", {}),
    ("boot.version", "\x1b[0;32mI (315) ecowatt: Firmware Version: 1.0.0\x1b[0m", {"version": "1.0.0"}),
    ("nonce.loaded", "I (320) security: Nonce loaded from NVS: 10000", {"nonce": "10000"}),
    ("nvs.unprovisioned", "W (318) nvs: no device identity provisioned", {}),
    ("status", "status: version=1.0.0 nonce=10000 server=https://127.0.0.1:5001",
     {"version": "1.0.0", "nonce": "10000", "server": "https://127.0.0.1:5001"}),
    ("console.unknown", "E (900) console: unknown command 'foo'", {"command": "foo"}),
    ("crash", "Guru Meditation Error: Core  0 panic'ed (LoadProhibited). Exception was unhandled.", {}),
    ("crash", "abort() was called at PC 0x400d1234 on core 0", {}),
    ("crash", "E (5000) task_wdt: Task watchdog got triggered.", {}),
]


@pytest.mark.parametrize("event, line, fields", CONTRACT)
def test_idf_profile_matches_contract(event, line, fields):
    match = load_profile("ecowatt-idf").event(event).search(strip_ansi(line))
    assert match, f"{event} did not match {line!r}"
    assert {k: v for k, v in match.groupdict().items() if v is not None} == fields


@pytest.mark.parametrize("event, line, fields", [
    ("boot.version", "[12:30:45] [OTA       ] ✓ Current Version: 1.0.0", {"version": "1.0.0"}),
    ("upload.ok", "[12:30:47] [UPLOAD    ] ✓ Upload successful (HTTP 200)", {"status": "200"}),
    ("ota.hash_mismatch", "[12:31:02] [OTA       ] ✗ Hash comparison result: MISMATCH", {}),
    ("ota.signature_invalid", "[12:31:03] [OTA       ] ✗ RSA signature verification failed", {}),
    # the lines of firmware 1.3.4 (reference/ecowatt-fw134-wire.md "Device behaviour and logs")
    ("nonce.loaded", "[00:00:02] [SECURITY  ] ✓ Initialized with nonce = 11001", {"nonce": "11001"}),
    ("upload.rejected", "[12:30:47] [UPLOAD    ] ✗ Upload failed (HTTP 401)", {"status": "401"}),
    ("ota.available", "[12:31:00] [OTA       ] ✓ New version: 1.3.5", {"version": "1.3.5"}),
    ("ota.progress", "[12:31:01] [OTA       ] ✓ Progress: [ 50%]    1/   3 chunks",
     {"percent": "50", "chunk": "1", "total": "3"}),
    ("ota.rebooting", "[12:31:09] [OTA       ] ✓ Rebooting to apply update...", {}),
    ("rom.reset", "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)", {"code": "0xc"}),
])
def test_arduino_profile(event, line, fields):
    match = load_profile("ecowatt-arduino").event(event).search(line)
    assert match and all(match.group(k) == v for k, v in fields.items())
    # the Arduino version line is not the IDF one and vice versa
    assert not load_profile("ecowatt-arduino").event("boot.version").search("I (1) x: Firmware Version: 1.0.0")


def test_builtin_list_and_unknown_event():
    assert {"ecowatt-idf", "ecowatt-arduino"} <= set(builtin_profiles())
    with pytest.raises(UnknownEventError, match="'ota.nope' is not defined by firmware profile 'ecowatt-idf'"):
        load_profile().event("ota.nope")


@pytest.mark.parametrize("text, fragment", [
    ('[meta]\nname="x"\n[events]\n"a.b" = "(unclosed"\n', "event 'a.b' has an invalid regex"),
    ('[meta]\nname="x"\n', "no [events] table"),
    ('[events]\n"a" = 3\n', "must be a regex string"),
    ('[events\n', "not valid TOML"),
    ('[meta]\nextends="no-such-profile"\n[events]\na="x"\n', "unknown firmware profile 'no-such-profile'"),
])
def test_bad_profile_files(tmp_path, text, fragment):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=None) as info:
        load_profile(path)
    assert fragment in str(info.value)


def test_custom_profile_file_extends_builtin(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[meta]\nname = "mine"\nextends = "ecowatt-idf"\n[events]\nboot.version = "VER=(?P<version>\\\\S+)"\n')
    profile = load_profile(path)
    assert profile.name == "mine" and profile.event("boot.version").search("VER=3").group("version") == "3"
    assert profile.event("status")  # inherited
