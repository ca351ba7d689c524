"""Provisioning merges into the firmware's own NVS entries: a board partition made by Espressif's
generator (a real peer) with "foreign" namespaces and Wi-Fi credentials the firmware saved keeps all
of them after the harness's provisioning; only ``ecowatt`` (and the Wi-Fi station keys when the
harness provisions Wi-Fi) is replaced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from nvs_partitions import generate_partition

from hil.images import nvs
from hil.images.nvs_gen import NVS_SIZE, DeviceIdentity, build_nvs
from hil.images.nvs_merge import merge

BIG = bytes(range(256)) * 20  # 5 KiB: a blob whose chunks span pages
FOREIGN = {
    ("calib", "offset"): -42,
    ("calib", "label"): 'inverter, west "2"',
    ("calib", "big_u64"): 2**64 - 1,
    ("calib", "table"): BIG,
    ("phy", "cal_version"): 7,
    ("nvs.net80211", "sta.authmode"): 3,
}
BOARD_ROWS = [
    ("ecowatt", "namespace", "", ""),
    ("device_id", "data", "string", "OLD-9"),
    ("nonce", "data", "u32", "12345"),
    ("ota_to", "data", "string", "9.9.9"),
    ("calib", "namespace", "", ""),
    ("offset", "data", "i32", "-42"),
    ("label", "data", "string", 'inverter, west "2"'),
    ("big_u64", "data", "u64", str(2**64 - 1)),
    ("table", "data", "hex2bin", BIG.hex()),
    ("phy", "namespace", "", ""),
    ("cal_version", "data", "u8", "7"),
    ("nvs.net80211", "namespace", "", ""),  # what esp_wifi_set_config() stored on the board
    ("sta.ssid", "data", "blob_sz_fill(32;0x00)", "firmware-ap"),
    ("sta.pswd", "data", "blob_fill(64;0x00)", "firmware-pass"),
    ("sta.authmode", "data", "u8", "3"),
]


@pytest.fixture(scope="module")
def board_partition(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return generate_partition(BOARD_ROWS, tmp_path_factory.mktemp("board") / "nvs.bin")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> DeviceIdentity:
    return DeviceIdentity("EW-0001", os.urandom(32), os.urandom(16), os.urandom(32), nonce=10000)


def _ssid(image: nvs.NvsImage) -> bytes:
    blob = image.get("nvs.net80211", "sta.ssid")
    assert isinstance(blob, bytes)
    return blob[4 : 4 + int.from_bytes(blob[:4], "little")]


def test_foreign_entries_survive_and_ecowatt_is_replaced(
    board_partition: bytes, lab: DeviceIdentity, tmp_path: Path
) -> None:
    result = merge(board_partition, build_nvs(lab, tmp_path / "lab.bin").read_bytes(), lab.owns)
    image = nvs.parse(result.data)
    assert image.errors == [] and result.unreadable == ()
    assert {key: image.get(*key) for key in FOREIGN} == FOREIGN
    assert _ssid(image) == b"firmware-ap"  # the firmware's own Wi-Fi settings are kept
    assert image.get("ecowatt", "device_id") == "EW-0001" and image.get("ecowatt", "nonce") == 10000
    assert image.get("ecowatt", "ota_to") is None  # the harness's namespace is replaced whole
    assert "calib/table" in result.kept and not any(k.startswith("ecowatt/") for k in result.kept)
    # deterministic: the same board and identity give the same bytes (skip-if-identical still works)
    assert merge(board_partition, build_nvs(lab, tmp_path / "again.bin").read_bytes(), lab.owns).data == result.data


def test_provisioned_wifi_replaces_only_the_station_keys(
    board_partition: bytes, lab: DeviceIdentity, tmp_path: Path
) -> None:
    wifi = lab.replace(wifi_ssid="lab-ap", wifi_password="lab-password")
    image = nvs.parse(merge(board_partition, build_nvs(wifi, tmp_path / "wifi.bin").read_bytes(), wifi.owns).data)
    assert _ssid(image) == b"lab-ap"
    pswd = image.get("nvs.net80211", "sta.pswd")
    assert isinstance(pswd, bytes) and pswd.rstrip(b"\0") == b"lab-password"
    assert image.get("nvs.net80211", "sta.authmode") == 3  # the driver's other keys stay
    assert {key: image.get(*key) for key in FOREIGN} == FOREIGN


def test_merging_twice_keeps_one_copy(board_partition: bytes, lab: DeviceIdentity, tmp_path: Path) -> None:
    provisioned = build_nvs(lab, tmp_path / "lab.bin").read_bytes()
    once = merge(board_partition, provisioned, lab.owns).data
    twice = merge(once, provisioned, lab.owns)
    assert twice.data == once
    keys = [(i.ns, i.key, i.type, i.chunk) for i in nvs.parse(twice.data).items]
    assert len(keys) == len(set(keys))


def test_an_erased_partition_gives_the_provisioned_one(lab: DeviceIdentity, tmp_path: Path) -> None:
    provisioned = build_nvs(lab, tmp_path / "lab.bin").read_bytes()
    assert merge(b"\xff" * NVS_SIZE, provisioned, lab.owns).data == provisioned


def test_unreadable_entries_are_reported(board_partition: bytes, lab: DeviceIdentity, tmp_path: Path) -> None:
    damaged = bytearray(board_partition)
    damaged[64 + 1 * 32 + 10] ^= 0xFF  # the key of the first page's second entry: its CRC fails
    result = merge(bytes(damaged), build_nvs(lab, tmp_path / "lab.bin").read_bytes(), lab.owns)
    assert result.unreadable and "CRC mismatch" in result.unreadable[0]


def test_too_much_to_keep_names_it(lab: DeviceIdentity, tmp_path: Path) -> None:
    # ~4.5 pages of the board's own: fits its partition, not next to the harness's entries
    bulk = [(f"b{i}", "data", "hex2bin", os.urandom(3600).hex()) for i in range(5)]
    crowded = generate_partition([("bulk", "namespace", "", ""), *bulk], tmp_path / "crowded.bin")
    with pytest.raises(nvs.NvsError, match=r"the board's own NVS entries \(\d+, at bulk/b\d\) do not fit"):
        merge(crowded, build_nvs(lab, tmp_path / "lab.bin").read_bytes(), lab.owns)
