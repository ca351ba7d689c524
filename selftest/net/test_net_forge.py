"""Forgery helpers: what changes, whether the MAC still verifies, and bodies no valid packet can hold."""

from __future__ import annotations

import base64
import json

import pytest

from hil.net.forge import Forger, other_device_id
from hil.net.http import parse_message
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.protocol.upload import NONCE_MAX, build_packet, open_packet, parse_packet, verify_mac
from hil.server.config import DeviceKeys
from hil.wire.profile import load_profile

forge = Forger(load_profile("ecowatt-api"))
KEY = bytes(range(32))
KEYS = DeviceKeys("EW-0001", KEY, bytes(16))
READINGS = Readings("EW-0001", 1_700_000_000, (Reading("Vac1", 230.1), Reading("Pac", 1200.0)))
PACKET = build_packet(READINGS, nonce=10001, hmac_key=KEY)


def test_flip_mac_is_well_formed_but_wrong() -> None:
    bad = forge.flip_mac(PACKET, 31)
    assert bad.mac[:62] == PACKET.mac[:62] and bad.mac != PACKET.mac and not verify_mac(KEY, bad)
    assert parse_packet(bad.to_json()) == bad  # passes the schema: the MAC check must catch it


@pytest.mark.parametrize("nonce", [10000, 10001, NONCE_MAX])
def test_nonce_mutations_with_and_without_key(nonce: int) -> None:
    keep, resigned = forge.with_nonce(PACKET, nonce), forge.with_nonce(PACKET, nonce, key=KEYS)
    assert keep.nonce == resigned.nonce == nonce
    assert verify_mac(KEY, resigned)
    assert verify_mac(KEY, keep) == (nonce == PACKET.nonce)  # only "equal" keeps a valid MAC


def test_payload_flip_stays_base64_and_breaks_content() -> None:
    flipped = forge.flip_payload(PACKET, 5, key=KEYS)
    raw, orig = base64.b64decode(flipped.payload), base64.b64decode(PACKET.payload)
    assert len(raw) == len(orig) and sum(a != b for a, b in zip(raw, orig)) == 1
    assert verify_mac(KEY, flipped) and not verify_mac(KEY, forge.flip_payload(PACKET, 5))


def test_device_id_and_flags() -> None:
    other = forge.with_device_id(PACKET, other_device_id(PACKET.device_id))
    assert other.device_id == "EW-0001X" and other.mac == PACKET.mac
    assert other_device_id("X" * 32) == "X" * 31 + "Y"
    flags = forge.with_flags(PACKET, compressed=False, compression_type=None)
    assert not flags.compressed and "compression_type" not in flags.to_dict()


def test_craft_matches_the_device_pipeline_and_opens() -> None:
    crafted = forge.craft("EW-0001", 10001, READINGS, key=KEYS)
    assert crafted == PACKET and open_packet(crafted, hmac_key=KEY, aes_key=None) == READINGS
    raw = forge.craft("EW-0001", 5, b"not json", key=None, compressed=False)
    assert raw.mac == "0" * 64 and base64.b64decode(raw.payload) == b"not json"


def test_body_writes_invalid_shapes() -> None:
    doc = json.loads(forge.body(PACKET, remove=("mac",), nonce=None, extra=[1]))
    assert "mac" not in doc and doc["nonce"] is None and doc["extra"] == [1]
    assert json.loads(forge.body(PACKET, nonce=2**40))["nonce"] == 2**40


def test_upload_request_roundtrip() -> None:
    req, _ = parse_message(forge.request(PACKET, host="127.0.0.1:5001").raw, is_response=False)
    assert req.target == "/api/upload/data" and forge.wire.parse_request(req.target, req.body) == PACKET


def test_mutation_table_names_are_unique_and_resigned_ones_verify() -> None:
    table = forge.mutations(PACKET, key=KEYS)
    assert len({f.name for f in table}) == len(table) == 2 + 8 * 2
    assert all(verify_mac(KEY, f.packet) for f in table if f.resigned)
    assert not any(verify_mac(KEY, f.packet) for f in table
                   if not f.resigned and f.name.startswith(("mac-", "payload", "nonce-old")))
    assert len(forge.mutations(PACKET, key=None)) == 2 + 8


FW134 = load_profile("ecowatt-fw134")
READINGS_FW134 = Readings("ESP32_001", 1_764_547_200, tuple(Reading(r, 100.0 + i) for i, r in enumerate(REGISTERS)))
FW134_KEYS = DeviceKeys("ESP32_001", FW134.test_hmac_key or b"", FW134.test_aes_key or b"")


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
def test_fw134_mutation_table_follows_the_profile(encrypt: bool) -> None:
    """Under ecowatt-fw134 the table forges what that envelope holds (no compression_type, the device
    id in the path, ``compressed`` turned on); resigned forgeries verify under the format's MAC (over
    the decrypted plaintext when encrypted), kept-MAC changes of MAC'd data do not."""
    fw = Forger(FW134)
    sent = fw.craft("ESP32_001", 11001, READINGS_FW134, key=FW134_KEYS, encrypt=encrypt)
    assert FW134.verify_mac(sent, hmac_key=FW134_KEYS.hmac_key, aes_key=FW134_KEYS.aes_key)
    table = {f.name: f for f in fw.mutations(sent, key=FW134_KEYS)}
    assert {"flags-compressed-keep-mac", "flags-encrypted-keep-mac", "device-id-keep-mac"} <= set(table)
    assert not any("uncompressed" in name for name in table)

    def verifies(name: str) -> bool:
        packet = table[name].packet
        return FW134.verify_mac(packet, hmac_key=FW134_KEYS.hmac_key, aes_key=FW134_KEYS.aes_key)
    for name in ("nonce-old", "nonce-huge", "payload-byte", "payload-last-byte"):
        assert not verifies(f"{name}-keep-mac"), name
    for name in ("nonce-old", "nonce-huge", "device-id") + (() if encrypt else ("payload-byte",)):
        assert verifies(f"{name}-resigned"), name
    assert table["device-id-keep-mac"].packet.device_id == "ESP32_001X" and verifies("device-id-keep-mac")
    request = fw.request(table["device-id-keep-mac"].packet, host="127.0.0.1:5001")
    assert request.target == "/aggregated/ESP32_001X" and b"device_id" not in request.body.split(b'"payload"')[0]
