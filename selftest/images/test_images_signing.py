"""MCUboot signing: imgtool (the peer) accepts what must boot and rejects each bad variant with
the reason the variant is meant to exercise; the bootloader trusts exactly the signing key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from helpers_images import mcuboot_tlvs

from hil.images.bootloader_key import find_key_block
from hil.images.index import Index
from hil.images.keys import KeyStore
from hil.images.signing import SigningError, sign_image, verify_image
from hil.images.variants import IMGTOOL_OK, VARIANTS, mutate

KEYHASH, PUBKEY, SHA256, RSA2048_PSS = 0x01, 0x02, 0x10, 0x20


def _keys(built: Index) -> KeyStore:
    return KeyStore(built.directory / "keys")


@pytest.mark.parametrize("name", ["app-v1", "app-v2"])
def test_imgtool_verifies_releases(built: Index, name: str) -> None:
    result = verify_image(built.path(name), _keys(built).path("mcuboot-signing-key"))
    assert result.ok and result.message == IMGTOOL_OK


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_imgtool_verdict_on_each_variant(built: Index, variant) -> None:
    result = verify_image(built.path(variant.name), _keys(built).path("mcuboot-signing-key"))
    assert result.ok is variant.boots, result.message
    assert variant.verify in result.message
    art = built.get(variant.name)
    assert (art.boots, art.version) == (variant.boots, variant.version)


def test_releases_do_not_verify_with_attacker_key(built: Index) -> None:
    result = verify_image(built.path("app-v1"), _keys(built).path("attacker-key"))
    assert not result.ok and "No signature found" in result.message


def test_bootloader_key_block_matches_keyhash_tlv(built: Index) -> None:
    der = find_key_block(built.path("bootloader").read_bytes())
    assert der is not None
    assert der == _keys(built).public_der("mcuboot-signing-key")
    for name in ("app-v1", "app-v2", "downgrade", "selftest-fail"):
        assert mcuboot_tlvs(built.path(name).read_bytes())[KEYHASH] == hashlib.sha256(der).digest(), name


def test_signature_verifies_with_cryptography(built: Index) -> None:
    """RSASSA-PSS, SHA-256, salt 32 over header+payload: checked without imgtool."""
    image = built.path("app-v2").read_bytes()
    tlvs = mcuboot_tlvs(image)
    img_size = int.from_bytes(image[12:16], "little")
    signed = image[:0x200 + img_size]
    assert tlvs[SHA256] == hashlib.sha256(signed).digest()
    public = _keys(built).rsa_private("mcuboot-signing-key").public_key()
    public.verify(tlvs[RSA2048_PSS], signed, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


def test_other_key_variant_embeds_attacker_public_key(built: Index) -> None:
    tlvs = mcuboot_tlvs(built.path("other-key").read_bytes())
    assert KEYHASH not in tlvs and RSA2048_PSS in tlvs
    assert _keys(built).public_der("attacker-key") in tlvs[PUBKEY]


def test_unsigned_variant_has_hash_but_no_signature(built: Index) -> None:
    tlvs = mcuboot_tlvs(built.path("unsigned").read_bytes())
    assert set(tlvs) == {SHA256}


def test_mutations_change_what_they_say() -> None:
    signed = bytes.fromhex("3db8f396") + bytes(8) + (0x1000).to_bytes(4, "little") + bytes(0x1200 - 16)
    flipped, note = mutate(signed, "bitflip")
    diff = [i for i, (a, b) in enumerate(zip(signed, flipped)) if a != b]
    assert diff == [0x200 + 0x800] and "0xa00" in note
    assert mutate(signed, "bad-magic")[0][:4] == bytes.fromhex("c2b8f396")
    assert mutate(signed + bytes(0x2000), "truncate")[0] == signed[:0x1000]
    with pytest.raises(ValueError):
        mutate(signed, "nonsense")


def test_sign_error_names_the_image(tmp_path: Path) -> None:
    payload = tmp_path / "in.bin"
    payload.write_bytes(b"\xe9" * 0x2000)
    with pytest.raises(SigningError, match="in.bin"):
        sign_image(payload, tmp_path / "out.bin", version="1.0.0", key=None, slot_size=0x1000)
