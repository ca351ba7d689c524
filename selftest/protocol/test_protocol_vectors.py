"""Known-answer vectors (selftest/protocol/vectors/*.json, committed): every pipeline step is recomputed.

The vectors were cross-checked once with ``openssl dgst -mac HMAC`` and ``openssl enc -d -aes-128-cbc``.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from hil.protocol import Reading, Readings, build_packet, compute_mac, encode_readings, open_packet, parse_packet
from hil.protocol.upload import compress, seal_payload

VECTORS = Path(__file__).parent / "vectors"
UPLOADS = ["upload-plain.json", "upload-encrypted.json"]


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def readings_of(vector: dict) -> Readings:
    r = vector["readings"]
    return Readings(r["device_id"], r["timestamp"], tuple(Reading(reg, val) for reg, val in r["readings"]))


def keys_of(vector: dict) -> tuple[bytes, bytes | None, bytes | None]:
    aes = bytes.fromhex(vector["aes_key"]) if vector["aes_key"] else None
    iv = bytes.fromhex(vector["iv"]) if vector["iv"] else None
    return bytes.fromhex(vector["hmac_key"]), aes, iv


@pytest.mark.parametrize("name", UPLOADS)
def test_plaintext_and_seal_and_mac_recompute(name: str) -> None:
    v = load(name)
    hmac_key, aes_key, iv = keys_of(v)
    assert encode_readings(readings_of(v)).decode() == v["plaintext"]
    assert seal_payload(bytes.fromhex(v["compressed_hex"]), aes_key=aes_key, iv=iv) == v["payload"]
    assert compute_mac(hmac_key, v["nonce"], v["payload"]) == v["mac"]
    # Independent MAC implementation: ascii(decimal nonce) ‖ ascii(payload), HMAC-SHA256.
    mac = crypto_hmac.HMAC(hmac_key, hashes.SHA256())
    mac.update(f"{v['nonce']}{v['payload']}".encode("ascii"))
    assert mac.finalize().hex() == v["mac"]


@pytest.mark.parametrize("name", UPLOADS)
def test_build_packet_reproduces_the_wire_bytes(name: str) -> None:
    v = load(name)
    plaintext = v["plaintext"].encode()
    if compress(plaintext).hex() != v["compressed_hex"]:
        if zlib.ZLIB_RUNTIME_VERSION != v["zlib_runtime_version"]:
            pytest.skip(f"zlib {zlib.ZLIB_RUNTIME_VERSION} deflates differently from {v['zlib_runtime_version']}")
        pytest.fail("compress() output changed with the same zlib: ZLIB_LEVEL or the plaintext changed")
    hmac_key, aes_key, iv = keys_of(v)
    packet = build_packet(readings_of(v), nonce=v["nonce"], hmac_key=hmac_key, aes_key=aes_key, iv=iv)
    assert packet.to_json().decode() == v["packet"]


@pytest.mark.parametrize("name", UPLOADS)
def test_parse_and_open_the_vector_packet(name: str) -> None:
    v = load(name)
    hmac_key, aes_key, _ = keys_of(v)
    packet = parse_packet(v["packet"].encode())
    assert (packet.nonce, packet.mac, packet.encrypted) == (v["nonce"], v["mac"], aes_key is not None)
    assert zlib.decompress(bytes.fromhex(v["compressed_hex"])).decode() == v["plaintext"]
    assert open_packet(packet, hmac_key=hmac_key, aes_key=aes_key) == readings_of(v)


def test_mac_vectors() -> None:
    for case in load("mac.json"):
        assert compute_mac(bytes.fromhex(case["hmac_key"]), case["nonce"], case["payload"]) == case["mac"], case
