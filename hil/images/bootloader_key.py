"""The key block inside the bootloader image: the MCUboot public key the board trusts.

On a real build the key is compiled into the MCUboot bootloader; here the builder places this block
in a DRAM segment of the bootloader's ESP32 image and the virtual board's ROM-loaded bootloader
reads it back. Layout: 16-byte magic, u16 LE length, DER ``RSAPublicKey`` (PKCS#1) — the same
bytes whose SHA-256 imgtool writes into the KEYHASH TLV.
"""

from __future__ import annotations

import struct

KEY_BLOCK_MAGIC = b"HIL-MCUBOOT-KEY\0"


def pack_key_block(rsa_public_key_der: bytes) -> bytes:
    """Serialise the trusted key (DER RSAPublicKey) into a key block."""
    return KEY_BLOCK_MAGIC + struct.pack("<H", len(rsa_public_key_der)) + rsa_public_key_der


def find_key_block(data: bytes) -> bytes | None:
    """Return the DER key from the first key block found in ``data``, or ``None``."""
    at = data.find(KEY_BLOCK_MAGIC)
    if at < 0 or at + 18 > len(data):
        return None
    (length,) = struct.unpack_from("<H", data, at + 16)
    der = data[at + 18 : at + 18 + length]
    return der if len(der) == length else None
