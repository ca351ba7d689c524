"""The OTA faults do exactly what hil.server.ota_faults' table says, byte for byte, and their params
are checked at their bounds (a malformed fault is ignored, not half applied)."""

from __future__ import annotations

import pytest

from hil.server.ota_faults import (
    MAX_DELAY_MS,
    MAX_LABEL,
    corrupt,
    flip_signature,
    known_faults,
    other_digest,
    truncate,
)


def test_corrupt_inverts_the_middle_byte_only() -> None:
    assert corrupt(bytes([0, 1, 2, 3])) == bytes([0, 1, 0xFD, 3])
    assert corrupt(bytes([0x5A])) == bytes([0xA5])
    assert corrupt(b"") == b""


def test_truncate_keeps_what_it_is_told_and_is_always_shorter() -> None:
    data = bytes(range(10))
    assert truncate(data, {}) == data[:5]
    assert truncate(data, {"bytes": 3}) == data[:3]
    assert truncate(data, {"bytes": 100}) == data[:9]  # never the whole chunk: that would be no fault
    assert truncate(b"", {"bytes": 5}) == b""
    assert truncate(b"x", {"bytes": 5}) == b""  # one byte: nothing of it is kept


@pytest.mark.parametrize("digest", ["ab" * 31 + "c0", "ab" * 31 + "c1", "ab" * 32])
def test_other_digest_differs_in_the_last_nibble_only(digest: str) -> None:
    other = other_digest(digest)
    assert other != digest and other[:-1] == digest[:-1] and len(other) == 64
    assert other[-1] in "01"


def test_flip_signature_inverts_the_first_byte() -> None:
    assert flip_signature("00ab" + "cd" * 254) == "ffab" + "cd" * 254
    assert flip_signature("f0" + "11" * 255) == "0f" + "11" * 255


def _kept(name: str, **params: object) -> bool:
    return bool(known_faults([{"id": 1, "name": name, "params": params}], (name,)))


def test_delay_bounds() -> None:
    assert _kept("delay_chunk", ms=0) and _kept("delay_chunk", ms=MAX_DELAY_MS)
    assert not _kept("delay_chunk", ms=MAX_DELAY_MS + 1) and not _kept("delay_chunk", ms=-1)
    assert not _kept("delay_chunk", ms=True) and not _kept("delay_chunk")


@pytest.mark.parametrize("name, extra", [("truncate_chunk", "bytes"), ("drop_connection", "times")])
def test_every_param_of_a_chunk_fault_is_checked(name: str, extra: str) -> None:
    assert _kept(name) and _kept(name, chunk=1, **{extra: 2})
    assert not _kept(name, chunk=1, **{extra: "2"}) and not _kept(name, chunk=1, **{extra: -1})
    assert not _kept(name, chunk="1", **{extra: 2}) and not _kept(name, chunk=-1)


def test_faults_of_other_endpoints_are_passed_over_not_stopped_at() -> None:
    rows = [{"id": 1, "name": "something_else", "params": {}}, {"id": 2, "name": "bad_hash", "params": {}},
            {"id": 3, "name": "corrupt_chunk", "params": {"chunk": "x"}}, {"id": 4, "name": "bad_signature", "params": {}}]
    assert [f.id for f in known_faults(rows, ("bad_hash", "bad_signature", "corrupt_chunk"))] == [2, 4]


def test_relabel_label_bounds() -> None:
    assert _kept("relabel_version", version="2.0.0", label="1")
    assert _kept("relabel_version", version="2.0.0", label="9" * MAX_LABEL)
    assert not _kept("relabel_version", version="2.0.0", label="")
    assert not _kept("relabel_version", version="2.0.0", label="9" * (MAX_LABEL + 1))
    assert not _kept("relabel_version", version="2.0.0", label=3) and not _kept("relabel_version", label="3.0.0")


def test_claim_size_bounds() -> None:
    assert _kept("claim_size", bytes=1) and _kept("claim_size", bytes=2_000_000)
    assert not _kept("claim_size", bytes=0) and not _kept("claim_size", bytes=True)
    assert not _kept("claim_size", bytes="big") and not _kept("claim_size")
