"""The ``ecowatt-fw134`` upload codec (hil.protocol.fw134) against the reference's known-answer vectors.

The vector file ``vectors/fw134-upload.json`` is pasted from ``ecowatt-fw134-wire.md``; the MACs and the
AES-CBC envelope are cross-checked with openssl (an independent implementation) when it is installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hil.protocol import fw134
from hil.protocol.bitpack import bitpack, bitunpack, smallest_width
from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.readings import REGISTERS, Reading, Readings

VECTOR = json.loads((Path(__file__).parent / "vectors" / "fw134-upload.json").read_text())
KEY = bytes.fromhex(VECTOR["hmac_key"])
INNER = VECTOR["inner"].encode("ascii")
SAMPLE = tuple(VECTOR["sample"])
KAT_BATCH = fw134.Batch(VECTOR["device_id"], VECTOR["timestamp"], (SAMPLE,))
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (apt-get install openssl)")


def _openssl(*args: str) -> bytes:
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, *args], capture_output=True, timeout=30)
    if done.returncode:  # not check=True: its message would print the key from the command line
        pytest.fail(f"openssl {args[0]} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")
    return done.stdout


def _code(call: Any, *args: Any, **kwargs: Any) -> ErrorCode:
    with pytest.raises(ProtocolError) as caught:
        call(*args, **kwargs)
    return caught.value.code


def _inner_doc() -> dict[str, Any]:
    return json.loads(INNER)


def _dump(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


# ---- known answers -------------------------------------------------------------------------------------


def test_the_known_answer_inner_is_rebuilt_byte_for_byte() -> None:
    inner = fw134.encode_inner(KAT_BATCH)
    assert inner == INNER
    assert len(inner) == VECTOR["inner_bytes"] == 811
    assert hashlib.sha256(inner).hexdigest() == VECTOR["sha256"]


def test_the_known_answer_blob_is_bitpack_at_a_fixed_16_bits() -> None:
    blob = bitpack(SAMPLE, VECTOR["bits"])
    assert base64.b64encode(blob).decode() == VECTOR["compressed_binary"]
    assert bitunpack(base64.b64decode(VECTOR["compressed_binary"])) == list(SAMPLE)
    # The smallest width would be 13 bits and a different blob: the firmware packs a fixed 16.
    assert smallest_width(SAMPLE) == 13
    assert bitpack(SAMPLE, 13) != blob and KAT_BATCH.bits == 16


@pytest.mark.parametrize("case", ["full", "small"])
def test_known_answer_macs(case: str) -> None:
    vector = VECTOR if case == "full" else VECTOR["small"]
    inner = vector["inner"].encode()
    assert fw134.mac_message(vector["nonce"], inner) == vector["nonce"].to_bytes(4, "big") + inner
    assert fw134.compute_mac(KEY, vector["nonce"], inner) == vector["mac"]
    envelope = fw134.build_envelope(inner, nonce=vector["nonce"], hmac_key=KEY)
    expected = (
        f'{{"nonce":{vector["nonce"]},"payload":"{base64.b64encode(inner).decode()}",'
        f'"mac":"{vector["mac"]}","encrypted":false,"compressed":false}}'
    )
    assert envelope.to_json().decode() == expected


@needs_openssl
@pytest.mark.parametrize("case", ["full", "small"])
def test_known_answer_macs_agree_with_openssl(case: str, tmp_path: Path) -> None:
    vector = VECTOR if case == "full" else VECTOR["small"]
    message = tmp_path / "message.bin"
    message.write_bytes(vector["nonce"].to_bytes(4, "big") + vector["inner"].encode())
    out = _openssl("dgst", "-sha256", "-mac", "HMAC", "-macopt", f"hexkey:{VECTOR['hmac_key']}", str(message))
    assert out.decode().strip().rsplit("= ", 1)[1] == vector["mac"]


def test_the_known_answer_decodes_to_the_batch_and_the_documented_readings() -> None:
    assert fw134.decode_inner(INNER) == KAT_BATCH
    readings = {r.register: r.value for r in fw134.readings_from_batch(KAT_BATCH).readings}
    # The physical values the reference names for this sample.
    assert readings == {"Vac1": 230.1, "Iac1": 5.2, "Fac1": 49.98, "Vpv1": 360.5, "Vpv2": 359.0,
                        "Ipv1": 8.1, "Ipv2": 7.9, "Temp": 41.2, "Pow": 1187.0, "Pac": 1150.0}  # fmt: skip


# ---- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 3, 7, 8, 13, 16])
def test_bitpack_round_trips_every_width_and_count(bits: int) -> None:
    rng = random.Random(bits)
    for count in (0, 1, 2, 7, 8, 9, 255):
        values = [rng.randrange(1 << bits) for _ in range(count)]
        blob = bitpack(values, bits)
        assert len(blob) == 3 + (bits * count + 7) // 8
        assert bitunpack(blob) == values


def test_inner_and_readings_round_trip_a_multi_sample_batch() -> None:
    rng = random.Random(134)
    samples = tuple(tuple(rng.randrange(1 << 13) for _ in REGISTERS) for _ in range(25))
    batch = fw134.Batch("dev-7", 1_700_000_000, samples, sampling_interval=10, compression_time_us=4710, bits=13)
    assert fw134.decode_inner(fw134.encode_inner(batch)) == batch
    one = fw134.Batch("dev-7", 1_700_000_000, (samples[0],), sampling_interval=10)
    assert fw134.batch_from_readings(fw134.readings_from_batch(one), sampling_interval=10) == one


@pytest.mark.parametrize("encrypt", [False, True])
def test_envelope_build_parse_verify_round_trip(encrypt: bool) -> None:
    envelope = fw134.build_envelope(INNER, nonce=11002, hmac_key=KEY, encrypt=encrypt)
    parsed = fw134.parse_envelope(envelope.to_json())
    assert parsed == envelope and parsed.encrypted is encrypt
    assert fw134.verify(parsed, KEY) == INNER


@needs_openssl
def test_the_encrypted_payload_decrypts_with_openssl(tmp_path: Path) -> None:
    envelope = fw134.build_envelope(INNER, nonce=11002, hmac_key=KEY, encrypt=True)
    cipher = tmp_path / "payload.bin"
    cipher.write_bytes(base64.b64decode(envelope.payload))
    key_hex, iv_hex = fw134.aes_key_of(KEY).hex(), fw134.FIXED_IV.hex()
    assert iv_hex == "000102030405060708090a0b0c0d0e0f" and key_hex == VECTOR["hmac_key"][:32]
    assert _openssl("enc", "-d", "-aes-128-cbc", "-K", key_hex, "-iv", iv_hex, "-in", str(cipher)) == INNER
    assert fw134.compute_mac(KEY, 11002, INNER) == envelope.mac  # MAC over the plaintext, not the ciphertext


# ---- strictness ----------------------------------------------------------------------------------------


def test_any_tampering_is_invalid_hmac() -> None:
    envelope = fw134.build_envelope(INNER, nonce=11001, hmac_key=KEY)
    tampered_inner = INNER.replace(b"ESP32_001", b"ESP32_002")
    other_key = bytes(32)
    flipped_mac = ("0" if envelope.mac[0] != "0" else "1") + envelope.mac[1:]
    for forged in (
        fw134.Envelope(envelope.nonce, fw134.seal(tampered_inner, aes_key=None), envelope.mac),
        fw134.Envelope(envelope.nonce + 1, envelope.payload, envelope.mac),
        fw134.Envelope(envelope.nonce, envelope.payload, flipped_mac),
    ):
        assert _code(fw134.verify, forged, KEY) is ErrorCode.INVALID_HMAC
    assert _code(fw134.verify, envelope, other_key) is ErrorCode.INVALID_HMAC


def test_an_undecryptable_payload_answers_like_a_bad_mac() -> None:
    envelope = fw134.build_envelope(INNER, nonce=11001, hmac_key=KEY, encrypt=True)
    raw = bytearray(base64.b64decode(envelope.payload))
    raw[-1] ^= 0xFF  # breaks the PKCS7 padding of the last block
    broken = fw134.Envelope(envelope.nonce, base64.b64encode(bytes(raw)).decode(), envelope.mac, encrypted=True)
    assert _code(fw134.unseal, broken.payload, encrypted=True, aes_key=fw134.aes_key_of(KEY)) is (
        ErrorCode.DECOMPRESSION_FAILED
    )
    with pytest.raises(ProtocolError) as caught:
        fw134.verify(broken, KEY)
    assert caught.value.code is ErrorCode.INVALID_HMAC and "padding" not in caught.value.message


@pytest.mark.parametrize("payload", ["not base64!", "QUJD\n", "QUI", "QR==", "", "é30="])
def test_bad_or_non_canonical_base64_is_invalid_payload(payload: str) -> None:
    assert _code(fw134.unseal, payload, encrypted=False, aes_key=None) is ErrorCode.INVALID_PAYLOAD


GOOD_BODY: dict[str, Any] = {
    "nonce": 11001,
    "payload": "e30=",
    "mac": "a" * 64,
    "encrypted": False,
    "compressed": False,
}
BAD_FIELDS: list[tuple[str, Any]] = [
    ("nonce", None), ("nonce", -1), ("nonce", 2**32), ("nonce", 11001.0), ("nonce", True), ("nonce", "11001"),
    ("payload", None), ("payload", 5), ("payload", "é"), ("mac", None), ("mac", "a" * 63), ("mac", "g" * 64),
    ("mac", ["a" * 64]), ("encrypted", None), ("encrypted", "false"), ("encrypted", 0),
    ("compressed", None), ("compressed", 1), ("compressed", True),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value"), BAD_FIELDS)
def test_envelope_fields_of_the_wrong_type_or_null_are_refused(key: str, value: Any) -> None:
    assert _code(fw134.parse_envelope, {**GOOD_BODY, key: value}) is ErrorCode.INVALID_PAYLOAD


@pytest.mark.parametrize("key", ["nonce", "payload", "mac"])
def test_missing_required_envelope_fields_are_refused(key: str) -> None:
    body = {k: v for k, v in GOOD_BODY.items() if k != key}
    assert _code(fw134.parse_envelope, _dump(body)) is ErrorCode.INVALID_PAYLOAD


def test_missing_flags_default_to_false_and_compressed_true_says_why() -> None:
    parsed = fw134.parse_envelope({"nonce": 1, "payload": "e30=", "mac": "A" * 64})
    assert (parsed.encrypted, parsed.compressed) == (False, False)
    with pytest.raises(ProtocolError, match=r"1\.3\.4 never compresses"):
        fw134.parse_envelope({**GOOD_BODY, "compressed": True})


def _mutated(path: tuple[Any, ...], value: Any) -> bytes:
    doc = _inner_doc()
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return _dump(doc)


META = ("compressed_data", 0, "decompression_metadata")
INNER_DEFECTS: list[tuple[str, bytes, ErrorCode]] = [
    ("sample_count disagrees", _mutated((*META, "sample_count"), 2), ErrorCode.INVALID_PAYLOAD),
    ("original size disagrees", _mutated((*META, "original_size_bytes"), 40), ErrorCode.INVALID_PAYLOAD),
    ("compressed size disagrees", _mutated((*META, "compressed_size_bytes"), 22), ErrorCode.INVALID_PAYLOAD),
    ("summary disagrees", _mutated(("session_summary", "total_compressed_bytes"), 24), ErrorCode.INVALID_PAYLOAD),
    ("total_samples wrong", _mutated(("total_samples",), 3), ErrorCode.INVALID_PAYLOAD),
    ("wrong data_type", _mutated(("data_type",), "raw_sensor_batch"), ErrorCode.INVALID_PAYLOAD),
    ("register map reordered", _mutated(("register_mapping", "0"), "Iac1"), ErrorCode.INVALID_PAYLOAD),
    ("layout reordered", _mutated((*META, "register_layout"), [1, 0, *range(2, 10)]), ErrorCode.INVALID_PAYLOAD),
    ("other method", _mutated((*META, "method"), "DICTIONARY"), ErrorCode.INVALID_PAYLOAD),
    ("blob truncated", _mutated(("compressed_data", 0, "compressed_binary"), "ARAKCP0ANBOGDhUOBgBRAE8BnASj"),
     ErrorCode.DECOMPRESSION_FAILED),
    ("blob bad marker", _mutated(("compressed_data", 0, "compressed_binary"), "0BAKCP0ANBOGDhUOBgBRAE8BnASjBH4="),
     ErrorCode.DECOMPRESSION_FAILED),
    ("blob not base64", _mutated(("compressed_data", 0, "compressed_binary"), "***"), ErrorCode.INVALID_PAYLOAD),
    ("no packets", _mutated(("compressed_data",), []), ErrorCode.INVALID_PAYLOAD),
    ("inner over 4096 bytes", _mutated(("padding",), "x" * 4096), ErrorCode.INVALID_PAYLOAD),
]  # fmt: skip


@pytest.mark.parametrize(("name", "inner", "code"), INNER_DEFECTS, ids=[d[0] for d in INNER_DEFECTS])
def test_inner_metadata_must_agree_with_the_blob(name: str, inner: bytes, code: ErrorCode) -> None:
    assert _code(fw134.decode_inner, inner) is code


@pytest.mark.parametrize(
    ("blob", "why"),
    [(b"\x01\x10", "header"), (b"\x02\x10\x01\x00\x01", "marker"), (b"\x01\x00\x01\x00", "width"),
     (b"\x01\x11\x01\x00\x00\x00", "width"), (b"\x01\x10\x01\x00", "exactly"), (b"\x01\x10\x01\x00\x01\x00", "exactly"),
     (b"\x01\x03\x01\x01", "padding")],
)  # fmt: skip
def test_bitunpack_refuses_every_inconsistency(blob: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why) as caught:
        bitunpack(blob)
    assert caught.value.code is ErrorCode.DECOMPRESSION_FAILED


@pytest.mark.parametrize(
    ("values", "bits"), [([8], 3), ([-1], 16), ([1 << 16], 16), ([1.5], 16), ([0] * 256, 16), ([0], 0), ([0], 17)]
)
def test_bitpack_refuses_values_that_do_not_fit(values: list[Any], bits: int) -> None:
    assert _code(bitpack, values, bits) is ErrorCode.INVALID_PAYLOAD


def test_encode_refuses_what_the_firmware_cannot_send() -> None:
    for batch in (
        fw134.Batch("ESP32_001", 1, ()),
        fw134.Batch("ESP32_001", 1, (SAMPLE[:9],)),
        fw134.Batch("ESP32_001", 1, (SAMPLE,) * 26),  # 260 values overflow the u8 count
        fw134.Batch("bad id!", 1, (SAMPLE,)),
        fw134.Batch("ESP32_001", -1, (SAMPLE,)),
    ):
        assert _code(fw134.encode_inner, batch) is ErrorCode.INVALID_PAYLOAD, batch


FULL_READINGS = [Reading(name, 1.0) for name in REGISTERS]
BAD_READINGS = {
    "missing Pac": FULL_READINGS[:-1],
    "Pac twice": [*FULL_READINGS, Reading("Pac", 2.0)],
    **{f"Pac={v}": [*FULL_READINGS[:-1], Reading("Pac", v)] for v in (-1.0, 70000.0, float("inf"), float("nan"))},
}


@pytest.mark.parametrize("readings", BAD_READINGS.values(), ids=BAD_READINGS.keys())
def test_readings_need_every_register_once_and_in_range(readings: list[Reading]) -> None:
    assert _code(fw134.batch_from_readings, Readings("ESP32_001", 1, tuple(readings))) is ErrorCode.INVALID_PAYLOAD


# ---- hostile input: only ProtocolError escapes ---------------------------------------------------------

HOSTILE_VALUES: list[Any] = [None, True, -1, 2**70, 1.5, float("nan"), "", "x" * 300, [], [None], {}, {"a": 1}]
HOSTILE_BODIES: list[bytes] = [
    b"", b"null", b"[]", b"42", b'"s"', b"\xff\xfe", b"{", b"[" * 100_000, b'{"a":' * 50_000,
    b"{" + b'"nonce":1' + b"1" * 5000 + b"}", b'{"nonce":NaN,"payload":"","mac":""}', b"\x00" * 64,
]  # fmt: skip


def _leaf_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    paths = [path] if path else []
    for key, child in children:
        paths += _leaf_paths(child, (*path, key))
    return paths


def _survives(call: Any, *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except ProtocolError:
        pass


def test_hostile_bodies_raise_only_protocol_errors() -> None:
    for body in HOSTILE_BODIES:
        _survives(fw134.parse_envelope, body)
        _survives(fw134.decode_inner, body)
        _survives(bitunpack, body)
    for value in HOSTILE_VALUES:
        for key in GOOD_BODY:
            _survives(fw134.parse_envelope, {**GOOD_BODY, key: value})


def test_every_inner_field_replaced_by_hostile_values_raises_only_protocol_errors() -> None:
    paths = _leaf_paths(_inner_doc())
    assert len(paths) > 40  # the walk reaches the nested metadata, not just the top level
    for path in paths:
        for value in HOSTILE_VALUES:
            _survives(fw134.decode_inner, _mutated(path, value))


def test_random_corruption_of_inner_and_envelope_raises_only_protocol_errors() -> None:
    rng = random.Random(1134)
    body = fw134.build_envelope(INNER, nonce=11001, hmac_key=KEY, encrypt=True).to_json()
    for _ in range(400):
        for data in (INNER, body):
            corrupt = bytearray(data[: rng.randrange(len(data) + 1)])
            for _ in range(rng.randrange(4)):
                if corrupt:
                    corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
            _survives(fw134.decode_inner, bytes(corrupt))
            try:
                envelope = fw134.parse_envelope(bytes(corrupt))
            except ProtocolError:
                continue
            _survives(fw134.verify, envelope, KEY)
