"""NVS ``ecowatt/wire`` (the upload format a device speaks): absent for the default format, so every
default identity's partition stays byte-identical to what was built before the field existed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hil.images import nvs
from hil.images.nvs_cache import NvsCache
from hil.images.nvs_gen import NVS_GEN, NVS_SIZE, WIRE_FORMATS, DeviceIdentity, build_nvs

# Synthetic keys (not secrets): the bytes only have to be fixed.
IDENTITY = DeviceIdentity("EW-0042", bytes(range(32)), bytes(range(16)), bytes(range(32, 64)))
# nvs_csv(IDENTITY) as the generator input was before DeviceIdentity had a `wire` field.
CSV_BEFORE_WIRE = """key,type,encoding,value
ecowatt,namespace,,
device_id,data,string,EW-0042
hmac_key,data,hex2bin,000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
aes_key,data,hex2bin,000102030405060708090a0b0c0d0e0f
nonce,data,u32,10000
fota_key,data,hex2bin,202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
psk_id,data,string,iotlab2024
psk,data,string,secretkey123456
server_url,data,string,http://127.0.0.1:5001
encrypt,data,u8,0
upload_period_s,data,u32,0
coap_mode,data,string,secure-only
"""


def _generate(csv_text: str, tmp_path: Path) -> bytes:
    """esp-idf-nvs-partition-gen run directly on *csv_text* (no hil code builds the rows)."""
    (tmp_path / "before.csv").write_text(csv_text, encoding="utf-8")
    out = tmp_path / "before.bin"
    cmd = [*NVS_GEN, "generate", str(tmp_path / "before.csv"), str(out), hex(NVS_SIZE)]
    subprocess.run(cmd, capture_output=True, timeout=60, check=True)
    return out.read_bytes()


def _entries(image: bytes) -> dict[tuple[int, str], tuple[int, bytes, bytes]]:
    parsed = nvs.parse(image)
    assert parsed.errors == []
    return {(i.ns, i.key): (i.type, i.data, i.payload) for i in parsed.items}


def test_default_wire_leaves_the_partition_byte_identical(tmp_path: Path) -> None:
    assert IDENTITY.wire == "ecowatt-api"
    image = build_nvs(IDENTITY, tmp_path / "now.bin").read_bytes()
    assert image == _generate(CSV_BEFORE_WIRE, tmp_path)
    assert nvs.parse(image).get("ecowatt", "wire") is None


def test_fw134_wire_adds_only_the_wire_string(tmp_path: Path) -> None:
    default = build_nvs(IDENTITY, tmp_path / "api.bin").read_bytes()
    fw134 = build_nvs(IDENTITY.replace(wire="ecowatt-fw134"), tmp_path / "fw134.bin").read_bytes()
    parsed = nvs.parse(fw134)
    assert parsed.get("ecowatt", "wire") == "ecowatt-fw134"
    item = parsed.find("ecowatt", "wire", (nvs.ItemType.SZ,))
    assert item is not None  # stored as a string, the type the firmware reads
    added = _entries(fw134)
    ns = parsed.namespaces()["ecowatt"]
    del added[(ns, "wire")]
    assert added == _entries(default)


def test_unknown_wire_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"EW-0042: wire format 'ecowatt-v9' is not one of ecowatt-api"):
        IDENTITY.replace(wire="ecowatt-v9")
    assert WIRE_FORMATS == ("ecowatt-api", "ecowatt-fw134")


def test_nvs_cache_keys_on_the_wire_format(tmp_path: Path) -> None:
    cache = NvsCache(tmp_path)
    api, fw134 = cache.image(IDENTITY), cache.image(IDENTITY.replace(wire="ecowatt-fw134"))
    assert api != fw134 and nvs.parse(fw134).get("ecowatt", "wire") == "ecowatt-fw134"
    assert cache.image(IDENTITY.replace(wire="ecowatt-api")) is api  # equal identities share one build
