"""Upload scenarios against the server alone: what an attacker on the network (with or without a
device's key) can do to the upload endpoint. No board needed; each proven against the reference
server's defects (``fails_with``).

Scenarios state outcomes ("refused as replay", "never a 5xx"); the session's wire profile
(``--hil-wire-profile``) builds the packets and reads the server's replies, so they run against a
server of any format the profile describes. Against an external server (``--hil-server-url``) the
parts that read the built-in server's database are left out, and burst scenarios run bounded
(``--hil-no-flood`` skips them).
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from hil.images.keys import KeyStore
from hil.images.nvs_gen import DeviceIdentity
from hil.net.attacker import Attacker
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.protocol.upload import UploadPacket
from hil.server.clock import ManualClock
from hil.server.nonce_book import NonceBook
from hil.server.under_test import ServerFactory, ServerUnderTest
from hil.wire.expect import Finding, expect_outcome, outcome_of
from hil.wire.identity import lab_identity
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile

PARALLEL_COPIES = 32
# One trial of 32 copies finds the nonce-check-not-atomic race with p ~ 0.19 (0.13-0.28, 95%) on this
# 2-core machine under load (bench/race_detection.py): 6 trials missed it 28% of the time; 50 miss it
# with ~3e-5 (0.1% at the interval's low end), at ~40 ms a trial.
RACE_TRIALS = 50
RATE_LIMIT = 3  # the built-in server's limit in the rate-limit scenario


def sample(device_id: str, seed: float = 0.0) -> Readings:
    """A plausible sample of every register."""
    return Readings(device_id, int(time.time()), tuple(Reading(r, round(100.0 + i + seed, 1))
                                                        for i, r in enumerate(REGISTERS)))


def valid_packet(attacker: Attacker, device: DeviceIdentity, nonce: int) -> UploadPacket:
    """A packet the device itself could have sent (the attacker holds its key)."""
    return attacker.forge.craft(device.device_id, nonce, sample(device.device_id, nonce % 7), key=device)


@pytest.mark.stride("S", threat="a device that is not in the registry gets readings stored")
@pytest.mark.fails_with("unknown-device-accepted")
def test_unknown_device_refused(remote_attacker: Attacker, server: ServerUnderTest, wire: WireProfile,
                                lab_keys: KeyStore) -> None:
    """A well-formed, correctly signed packet from a device id the server has not registered is
    refused as an unknown device, stores nothing, and is recorded as a security event."""
    stranger = lab_identity(wire, lab_keys, "EW-ROGUE")
    expect_outcome(wire, remote_attacker.send(valid_packet(remote_attacker, stranger, stranger.nonce + 1)),
                   Outcome.UNKNOWN_DEVICE, what="a signed packet from unregistered device EW-ROGUE")
    if server.builtin:
        assert server.readings("EW-ROGUE") == []
        assert [e["code"] for e in server.events(device_id="EW-ROGUE")] == ["DEVICE_NOT_FOUND"]


MISSING_FIELDS = [pytest.param(field, how, id=f"{field}-{how}") for field in ("mac", "nonce")
                  for how in ("missing", "null")]


@pytest.mark.stride("S", "T", threat="a packet without its security fields skips the checks")
@pytest.mark.fails_with("missing-fields-skip-checks")
@pytest.mark.parametrize("field, how", MISSING_FIELDS)
def test_missing_security_fields_never_bypass(remote_attacker: Attacker, server: ServerUnderTest, wire: WireProfile,
                                              lab_device: DeviceIdentity, nonce_book: NonceBook,
                                              field: str, how: str) -> None:
    """A packet whose mac or nonce is missing or null is refused as invalid — never a bypass of the
    MAC or replay check — and changes nothing on the server."""
    packet = valid_packet(remote_attacker, lab_device, nonce_book.block() + 1)
    forge = remote_attacker.forge
    body = forge.body(packet, remove=(field,)) if how == "missing" else forge.body(packet, **{field: None})
    expect_outcome(wire, remote_attacker.send(body, path=wire.upload_path(lab_device.device_id)), Outcome.INVALID,
                   what=f"a signed packet with its {field} {how}")
    if server.builtin:  # a fresh database: nothing stored, no nonce accepted
        assert server.readings(lab_device.device_id) == []
        assert server.last_nonce(lab_device.device_id) is None


NOT_JSON = {  # refused by the JSON parser
    "not-json": b"this is not json",
    "truncated-json": b'{"device_id":"EW-0001","nonce":1',
    "array": b"[1,2,3]",
    "string": b'"EW-0001"',
    "invalid-utf8": b'{"device_id":"\xff\xfe"}',
    "deep-nesting": b"[" * 3000 + b"]" * 3000,  # under every declared body limit, past any recursion limit
    "empty": b"",
}
# A signed packet with one field of the wrong type or range (the field's name is the profile's).
BAD_FIELDS = {
    "nonce-string": ("nonce", "1"),
    "nonce-negative": ("nonce", -1),
    "nonce-float": ("nonce", 1.5),
    "nonce-bignum": ("nonce", int("1" + "0" * 400)),
    "mac-not-hex": ("mac", "z" * 64),
    "mac-truncated": ("mac", "0" * 32),
    "id-object": ("device_id", {"$ne": None}),  # the payload, for formats with the id in the path
}
MALFORMED = [pytest.param(name, id=name, marks=pytest.mark.fails_with("malformed-json-500")) for name in NOT_JSON] + \
            [pytest.param(name, id=name, marks=pytest.mark.fails_with("field-type-errors-500")) for name in BAD_FIELDS]


@pytest.mark.stride("D", threat="malformed input crashes the server (5xx) or exhausts it")
@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_body_refused_never_5xx(remote_attacker: Attacker, server: ServerUnderTest, wire: WireProfile,
                                          lab_device: DeviceIdentity, nonce_book: NonceBook, name: str) -> None:
    """Malformed bodies are refused as invalid, never a 5xx, and recorded as security events."""
    if name in NOT_JSON:
        body = NOT_JSON[name]
    else:
        field, value = BAD_FIELDS[name]
        if field == "device_id" and field not in wire.envelope_fields:
            field = "payload"
        body = remote_attacker.forge.body(valid_packet(remote_attacker, lab_device, nonce_book.block() + 1),
                                          **{field: value})
    expect_outcome(wire, remote_attacker.send(body, path=wire.upload_path(lab_device.device_id)), Outcome.INVALID,
                   what=f"a malformed upload body ({name})")
    if server.builtin:
        assert [e["code"] for e in server.events()] == ["INVALID_PAYLOAD"]


@pytest.mark.stride("D", threat="an oversized body ties up server memory and CPU")
@pytest.mark.fails_with("no-body-limit")
def test_oversized_body_refused(remote_attacker: Attacker, wire: WireProfile, lab_device: DeviceIdentity,
                                nonce_book: NonceBook, server: ServerUnderTest) -> None:
    """A body over the profile's declared limit is refused as too large (before it is parsed) even
    when it is an otherwise valid, signed packet, and nothing is stored."""
    packet = valid_packet(remote_attacker, lab_device, nonce_book.block() + 1)
    body = remote_attacker.forge.body(packet, padding="x" * wire.limits.body_bytes)
    expect_outcome(wire, remote_attacker.send(body, path=wire.upload_path(lab_device.device_id)), Outcome.TOO_LARGE,
                   what=f"a signed packet padded to {len(body)} bytes (declared limit {wire.limits.body_bytes})")
    if server.builtin:
        assert server.readings(lab_device.device_id) == []


EDGES = [pytest.param(over, chunked, id=f"{'one-over' if over else 'at-limit'}-{'chunked' if chunked else 'length'}",
                      marks=pytest.mark.fails_with("no-body-limit" if over else "body-limit-off-by-one"))
         for chunked in (False, True) for over in (0, 1)]  # fmt: skip


@pytest.mark.stride("D", "T", threat="a body limit off by one: a valid upload refused, or an unbounded read")
@pytest.mark.parametrize("over, chunked", EDGES)
def test_body_limit_checked_at_its_edge(remote_attacker: Attacker, wire: WireProfile, lab_device: DeviceIdentity,
                                        nonce_book: NonceBook, server: ServerUnderTest, over: int,
                                        chunked: bool) -> None:
    """A signed packet padded (with JSON whitespace) to exactly the declared body limit is accepted,
    one byte more is refused as too large and stores nothing: with a Content-Length, and in chunked
    framing without one (the server must count what it reads, not trust a header that is not there)."""
    limit = wire.limits.body_bytes
    if not limit:
        pytest.skip(f"wire profile {wire.name} declares no body limit")
    packet = valid_packet(remote_attacker, lab_device, nonce_book.block() + 1)
    raw = remote_attacker.forge.body(packet)
    body = raw + b" " * (limit + over - len(raw))
    framing = "chunked, no Content-Length" if chunked else "with its Content-Length"
    reply = remote_attacker.send(body, path=wire.upload_path(lab_device.device_id), chunked=chunked)
    expect_outcome(wire, reply, Outcome.TOO_LARGE if over else Outcome.ACCEPTED,
                   what=f"a signed packet of {len(body)} bytes ({framing}; declared limit {limit})")  # fmt: skip
    if server.builtin:
        assert len(server.readings(lab_device.device_id)) == (0 if over else len(REGISTERS))


BAD_PATH_IDS = [pytest.param("A" * 33, id="too-long"), pytest.param("EW%200001", id="space"),
                pytest.param("EW-0001%00", id="nul"), pytest.param("EW-0001.json", id="dot"),
                pytest.param("%2e%2e", id="dot-dot")]  # fmt: skip


@pytest.mark.stride("S", "T", threat="a malformed device id in the URL path slips past the check and files readings")
@pytest.mark.parametrize("path_id", BAD_PATH_IDS)
def test_malformed_device_id_in_path_refused(remote_attacker: Attacker, wire: WireProfile, lab_device: DeviceIdentity,
                                             nonce_book: NonceBook, server: ServerUnderTest, path_id: str) -> None:
    """Where the format files an upload under the device id in its URL path, a signed packet posted
    under a malformed id (too long, a space, a NUL, a dot, ``..``) is refused as invalid or unknown,
    stores nothing anywhere and takes no nonce."""
    if not wire.device_id_in_path:
        pytest.skip(f"wire profile {wire.name} carries the device id in the body, not the path")
    packet = valid_packet(remote_attacker, lab_device, nonce_book.block() + 1)
    reply = remote_attacker.send(packet, path=wire.upload_path(path_id))
    expect_outcome(wire, reply, Outcome.INVALID, Outcome.UNKNOWN_DEVICE,
                   what=f"a signed packet of {lab_device.device_id} posted under the path id {path_id!r}")  # fmt: skip
    if server.builtin:
        assert server.readings() == [], f"readings stored from a post under {path_id!r}"
        assert server.last_nonce(lab_device.device_id) is None


@pytest.mark.stride("S", "T", threat="a race lets one captured packet be accepted several times")
@pytest.mark.fails_with("replay-allowed-equal-nonce", "nonce-check-not-atomic")
def test_parallel_copies_accepted_once(server_factory: ServerFactory, lab_device: DeviceIdentity, wire: WireProfile,
                                       nonce_book: NonceBook, flood_allowed: None, evidence) -> None:
    """In each of 50 trials, 32 copies of one valid packet sent at the same instant: exactly one is
    accepted (at most one, by an external server whose rate limit may refuse a whole trial), every
    other is refused (as replay, or rate-limited by an external server), and its readings are stored once (on the built-in server rate limiting is off, so only the replay check
    stands between the copies and the database). A race is a matter of chance: one trial can miss it."""
    server = server_factory.start(rate_limit=0, external_as_is=True)
    attacker = Attacker(server, wire=wire)
    allowed = {Outcome.ACCEPTED, Outcome.REPLAY} | ({Outcome.RATE_LIMITED} if not server.builtin else set())
    first = nonce_book.block() + 1
    trials = []
    for nonce in range(first, first + RACE_TRIALS):
        packet = valid_packet(attacker, lab_device, nonce)
        results = attacker.replay(attacker.request(packet), times=PARALLEL_COPIES, parallel=PARALLEL_COPIES)
        verdicts = [attacker.verdict(r) for r in results]
        trials.append(sum(v.outcome is Outcome.ACCEPTED for v in verdicts))
        odd = [v.describe() for v in verdicts if v.outcome not in allowed]
        assert not odd, f"copies of nonce {nonce} refused otherwise than as replay: {odd[:3]}"
        assert trials[-1] <= 1, f"trial {len(trials)}: {trials[-1]} of {PARALLEL_COPIES} copies of nonce {nonce} accepted"
    evidence.note(f"{RACE_TRIALS} trials of {PARALLEL_COPIES} parallel copies, accepted per trial: {trials}")
    assert max(trials) <= 1, f"copies accepted per trial of {PARALLEL_COPIES}: {trials}"
    # an external server's rate limit may refuse every copy of a later trial; some trial must test the race
    assert trials == [1] * RACE_TRIALS if server.builtin else 1 in trials, f"copies accepted per trial: {trials}"
    if server.builtin:
        assert len(server.readings(lab_device.device_id)) == RACE_TRIALS * len(REGISTERS)


@pytest.mark.stride("D", threat="a device (or its stolen key) floods the server")
@pytest.mark.fails_with("no-rate-limit", "rate-limit-refusals-unlogged")
def test_rate_limit_refuses_a_burst(server_factory: ServerFactory, lab_device: DeviceIdentity, wire: WireProfile,
                                    nonce_book: NonceBook, flood_allowed: None, evidence) -> None:
    """A burst of valid uploads one above the limit (3 per window on the built-in server, the profile's
    declared limit on an external one) must meet a refusal as rate-limited, nothing after it is
    accepted, and the refused upload is not stored (its nonce not taken)."""
    limited = server_factory.start(rate_limit=RATE_LIMIT, external_as_is=True)
    client = Attacker(limited, wire=wire)
    limit = RATE_LIMIT if limited.builtin else (wire.limits.rate or RATE_LIMIT)
    first = nonce_book.block() + 1
    seen, refused_at = [], None
    for nonce in range(first, first + limit + 1):
        verdict = outcome_of(wire, client.send(valid_packet(client, lab_device, nonce)))
        seen.append(f"{nonce}: {verdict.outcome.value}")
        if refused_at is None and verdict.outcome is Outcome.RATE_LIMITED:
            refused_at = (nonce, verdict)
        elif refused_at is not None and verdict.outcome is Outcome.ACCEPTED:
            raise Finding(f"upload {nonce} accepted after the rate limit refused {refused_at[0]}: {seen}")
    evidence.note(f"burst of {limit + 1} uploads: " + ", ".join(seen))
    if refused_at is None:
        raise Finding(f"{limit + 1} valid uploads in a burst (limit {limit} per {wire.limits.rate_window_s:g} s) "
                      f"were never refused as rate-limited: {', '.join(seen)}")
    if limited.builtin:
        nonce, verdict = refused_at
        assert nonce == first + RATE_LIMIT, seen
        retry = verdict.fields.get("retry_after_seconds")
        assert isinstance(retry, (int, float)) and retry > 0, verdict.describe()
        assert limited.last_nonce(lab_device.device_id) == first + RATE_LIMIT - 1


@pytest.mark.stride("D", threat="a rate limit that never reopens locks a device out, or one that reopens early lets a flood in")
@pytest.mark.fails_with("rate-limit-counts-refusals")
def test_rate_limit_window_reopens_when_it_said(server_factory: ServerFactory, lab_device: DeviceIdentity,
                                                wire: WireProfile, nonce_book: NonceBook) -> None:
    """Both sides of a sliding window, on the built-in server's own clock moved by hand: uploads spread
    over the window's first third fill the limit; a device that keeps retrying is refused each time
    with a retry_after counting down to when the oldest upload leaves the window, and its refused
    uploads take no nonce; at that second one upload is accepted, and the next is refused until the
    second oldest leaves too."""
    clock, t0 = ManualClock(), 1000.0
    limited = server_factory.start(rate_limit=RATE_LIMIT, clock=clock)
    client = Attacker(limited, wire=wire)
    window = limited.state.config.rate_window_s
    spread = window / 3 / (RATE_LIMIT - 1)  # the limit's uploads at 0, 10, 20 s of a 60 s window
    nonce = nonce_book.block() + 1

    def send(outcome: Outcome, what: str) -> Any:
        return expect_outcome(wire, client.send(valid_packet(client, lab_device, nonce)), outcome,
                              what=f"upload {nonce} {clock() - t0:g} s in: {what}")  # fmt: skip

    for i in range(RATE_LIMIT):
        clock.advance(spread if i else 0)
        send(Outcome.ACCEPTED, f"within the limit of {RATE_LIMIT} per {window:g} s")
        nonce += 1
    for at in (window / 3, window / 2, window - 1):  # one over the limit, then retries inside the window
        clock.advance(t0 + at - clock())
        left = send(Outcome.RATE_LIMITED, "over the limit").fields.get("retry_after_seconds")
        assert left == math.ceil(window - at), f"{at:g} s in: retry_after {left!r}, the oldest leaves at {window:g} s"
    assert limited.last_nonce(lab_device.device_id) == nonce - 1, "a rate-limited upload took its nonce"
    clock.advance(t0 + window - clock())  # the oldest upload leaves the window: room for one
    send(Outcome.ACCEPTED, "the oldest upload has left the window")
    nonce += 1
    left = send(Outcome.RATE_LIMITED, "the window is full again").fields.get("retry_after_seconds")
    assert left == math.ceil(spread), f"retry_after {left!r}: the second oldest leaves in {spread:g} s"
    assert limited.last_nonce(lab_device.device_id) == nonce - 1
