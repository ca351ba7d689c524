"""NVS codec against esp-idf-nvs-partition-gen output: values, CRC checks, power-cut-safe updates."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hil.images import nvs
from sim_boot.fakes import FakeFlash

HMAC = "00112233445566778899aabbccddeeff" * 2
NVS_SIZE = 0x6000


class CutAfter(Exception):
    """Power lost after a number of flash writes."""


class CountingFlash(FakeFlash):
    """Loses power (raises) when ``budget`` writes have been done."""

    def __init__(self, image: bytes, budget: int) -> None:
        super().__init__(len(image))
        self.write(0, image)
        self.budget = budget

    def write(self, offset: int, data: bytes) -> None:
        if getattr(self, "budget", None) is not None:
            if self.budget == 0:
                raise CutAfter()
            self.budget -= 1
        super().write(offset, data)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> bytes:
    tmp = tmp_path_factory.mktemp("nvs")
    (tmp / "big.bin").write_bytes(bytes(range(256)) * 20)  # 5120 bytes: a two-chunk blob
    (tmp / "in.csv").write_text(
        "key,type,encoding,value\n"
        "ecowatt,namespace,,\n"
        "device_id,data,string,EW-0001\n"
        "nonce,data,u32,10000\n"
        f"hmac_key,data,hex2bin,{HMAC}\n"
        "server_url,data,string,https://127.0.0.1:5001\n"
        "small,data,u8,7\n"
        "word,data,u16,65000\n"
        "signed,data,i32,-5\n"
        "big64,data,u64,1234567890123\n"
        f"bigblob,file,binary,{tmp / 'big.bin'}\n"
        "other,namespace,,\n"
        "nonce,data,u32,42\n")
    out = tmp / "nvs.bin"
    done = subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate",
                           str(tmp / "in.csv"), str(out), hex(NVS_SIZE)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def test_reads_generator_output(generated):
    image = nvs.parse(generated)
    assert image.errors == []
    assert image.namespaces() == {"ecowatt": 1, "other": 2}
    get = lambda key: image.get("ecowatt", key)  # noqa: E731
    assert (get("device_id"), get("nonce"), get("hmac_key")) == ("EW-0001", 10000, bytes.fromhex(HMAC))
    assert (get("small"), get("word"), get("signed"), get("big64")) == (7, 65000, -5, 1234567890123)
    assert get("server_url") == "https://127.0.0.1:5001"
    assert get("bigblob") == bytes(range(256)) * 20  # spans two pages: blob_idx + 2 blob_data
    assert image.get("other", "nonce") == 42 and get("missing") is None


@pytest.mark.parametrize("where,what", [
    (64 + 32 + 9, "entry CRC"),      # key byte of the device_id entry
    (64 + 2 * 32 + 1, "data CRC"),   # the device_id string payload
    (8, "header CRC"),               # page header (version byte)
])
def test_crc_errors_are_detected(generated, where, what):
    corrupt = bytearray(generated)
    corrupt[where] ^= 0x04
    image = nvs.parse(bytes(corrupt))
    assert any(what in e for e in image.errors), image.errors
    assert image.get("ecowatt", "device_id") is None


def test_update_writes_new_then_erases_old(generated):
    flash = FakeFlash(len(generated))
    flash.write(0, generated)
    seen = []
    writer = nvs.NvsWriter(flash, 0, len(generated), checkpoint=lambda key: seen.append(
        (key, nvs.parse(flash.read(0, len(generated))).get("ecowatt", "nonce"))))
    writer.set("ecowatt", "nonce", 10001, nvs.ItemType.U32)
    writer.set("ecowatt", "hmac_key", b"\x01" * 32, nvs.ItemType.BLOB_IDX)
    writer.set("ecowatt", "device_id", "EW-0002", nvs.ItemType.SZ)
    writer.set("fresh", "flag", 1, nvs.ItemType.U8)
    assert seen[0] == ("nonce", 10001)  # at the checkpoint the new entry already wins
    image = writer.read()
    assert image.errors == []
    assert [image.get("ecowatt", k) for k in ("nonce", "hmac_key", "device_id")] == \
        [10001, b"\x01" * 32, "EW-0002"]
    assert image.get("fresh", "flag") == 1 and image.get("other", "nonce") == 42
    nonces = [i for i in image.items if i.key == "nonce" and i.ns == 1]
    assert len(nonces) == 1  # the old entry was erased


@pytest.mark.parametrize("key,value,kind", [("nonce", 10001, nvs.ItemType.U32),
                                            ("device_id", "EW-0002", nvs.ItemType.SZ),
                                            ("hmac_key", b"\x05" * 32, nvs.ItemType.BLOB_IDX)])
def test_power_cut_at_any_write_leaves_old_or_new(generated, key, value, kind):
    old = nvs.parse(generated).get("ecowatt", key)
    outcomes = set()
    for budget in range(12):
        flash = CountingFlash(generated, budget)
        try:
            nvs.NvsWriter(flash, 0, len(generated)).set("ecowatt", key, value, kind)
            completed = True
        except CutAfter:
            completed = False
        image = nvs.parse(flash.read(0, len(generated)))
        got = image.get("ecowatt", key)
        assert got in (old, value) and image.errors == []
        outcomes.add(got)
        if completed:
            break
    assert outcomes == {old, value}


def test_many_updates_roll_over_pages_and_garbage_collect(generated):
    flash = FakeFlash(len(generated))
    flash.write(0, generated)
    writer = nvs.NvsWriter(flash, 0, len(generated))
    for nonce in range(10001, 11501):  # > 5 pages of entries: needs garbage collection
        writer.set("ecowatt", "nonce", nonce, nvs.ItemType.U32)
    image = writer.read()
    assert image.errors == [] and image.get("ecowatt", "nonce") == 11500
    assert image.get("ecowatt", "device_id") == "EW-0001"
    assert image.get("ecowatt", "bigblob") == bytes(range(256)) * 20
    assert nvs.PageState.EMPTY in image.page_states  # one page stays free for the next GC


def test_blank_partition_has_no_namespaces():
    image = nvs.parse(b"\xff" * NVS_SIZE)
    assert image.namespaces() == {} and image.errors == []
