"""Generate the upload known-answer vectors ONCE (fixed TEST ONLY keys and IVs); the JSON files are committed.

    python selftest/protocol/make_vectors.py

Do not re-run to "fix" a failing vector test: a changed vector means the wire format changed.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from hil.protocol import Reading, Readings, build_packet, compute_mac, encode_readings
from hil.protocol.upload import compress

HERE = Path(__file__).parent / "vectors"
HMAC_KEY = bytes(range(32))                   # TEST ONLY
AES_KEY = bytes(range(0x10, 0x20))            # TEST ONLY
IV = bytes(range(0xA0, 0xB0))
READINGS = Readings("EW-0001", 1795219200, (
    Reading("Vac1", 230.1), Reading("Iac1", 4.25), Reading("Fac1", 50.02), Reading("Vpv1", 365.5),
    Reading("Vpv2", 0.0), Reading("Ipv1", 3.1), Reading("Ipv2", 0.0), Reading("Temp", 41.7),
    Reading("Pow", 1133.0), Reading("Pac", 1098.6)))


def upload_vector(name: str, nonce: int, aes_key: bytes | None) -> dict:
    """One end-to-end vector: every intermediate value of the device pipeline."""
    plaintext = encode_readings(READINGS)
    packet = build_packet(READINGS, nonce=nonce, hmac_key=HMAC_KEY, aes_key=aes_key, iv=IV if aes_key else None)
    return {
        "name": name, "zlib_runtime_version": zlib.ZLIB_RUNTIME_VERSION,
        "hmac_key": HMAC_KEY.hex(), "aes_key": aes_key.hex() if aes_key else None, "iv": IV.hex() if aes_key else None,
        "nonce": nonce,
        "readings": {"device_id": READINGS.device_id, "timestamp": READINGS.timestamp,
                     "readings": [[r.register, r.value] for r in READINGS.readings]},
        "plaintext": plaintext.decode(), "compressed_hex": compress(plaintext).hex(),
        "payload": packet.payload, "mac_message": f"{nonce}{packet.payload}", "mac": packet.mac,
        "packet": packet.to_json().decode(),
    }


def mac_vectors() -> list[dict]:
    """MAC-only vectors, including the u32 nonce bounds and an empty payload."""
    cases = [(0, ""), (1, "AA=="), (10001, "eJwDAAAAAAE="), (4294967295, "QUJD")]
    return [{"hmac_key": HMAC_KEY.hex(), "nonce": n, "payload": p, "mac": compute_mac(HMAC_KEY, n, p)} for n, p in cases]


def main() -> None:
    """Write the vector files."""
    HERE.mkdir(exist_ok=True)
    files = {"upload-plain.json": upload_vector("plain", 10001, None),
             "upload-encrypted.json": upload_vector("encrypted", 10002, AES_KEY),
             "mac.json": mac_vectors()}
    for name, doc in files.items():
        (HERE / name).write_text(json.dumps(doc, indent=2) + "\n")
        print(HERE / name)


if __name__ == "__main__":
    main()
