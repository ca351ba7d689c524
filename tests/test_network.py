"""Network observer and attacker scenarios (issue 5): what someone who sees the board's traffic can
learn from it and do with it — replay, forge, re-label, flood, break TLS, interfere with retries —
in the session's wire format (``--hil-wire-profile``), stated as outcomes.

Each scenario names the board defects (``hil sim --list-defects``) and server defects
(``hil server --list-defects``) it must detect (``fails_with``); the defect meta-tests in
selftest/scenarios run it against each and require an assertion failure.
"""

from __future__ import annotations

import json
import socket
from itertools import pairwise
from pathlib import Path

import pytest

from hil.board.board import Board
from hil.board.contract import BOOT_TIMEOUT, UPLOAD_TIMEOUT, Provision, start_upload, upload_now
from hil.images.index import Index
from hil.images.keys import KeyStore
from hil.images.nvs_gen import DeviceIdentity
from hil.net.attacker import Attacker
from hil.net.fallback import Capture
from hil.net.flows import Flow, flows_from_pcap
from hil.net.http import build_response
from hil.net.mitm import MitmProxy
from hil.net.records import RecordParseError, parse_tls, type_counts
from hil.net.rules import Rule
from hil.net.search import search, search_decoded
from hil.net.summary import format_table, summarize
from hil.protocol.readings import Readings
from hil.report.evidence import Evidence
from hil.report.limits import AtLeast, AtMost
from hil.server.config import DeviceKeys, load_devices
from hil.server.under_test import ServerFactory, ServerUnderTest
from hil.wire.expect import expect_outcome
from hil.wire.identity import lab_identity
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile

REFERENCE = Path(__file__).resolve().parents[1] / "captures" / "reference"
FLOOD_REPLAYS, FLOOD_PARALLEL = 200, 16
# a retry's pause is timed by the console lines' arrival on this host: allow that much jitter
RETRY_ARRIVAL_JITTER = 0.05
# a firmware whose wire profile declares no retry policy is still held to a bounded, paced one:
# at most this many attempts in one upload cycle, at least this many seconds apart
UNDECLARED_RETRIES = (5, 0.5)
OTHER_DEVICE, UNREGISTERED_DEVICE = "EW-0002", "EW-0003"


def cycle_done(board: Board) -> None:
    """Wait until the console has finished the commands sent so far (it runs them one at a time)."""
    board.trigger.require_console(board.name, "status")
    board.console.send("status")
    board.console.expect_event("status", UPLOAD_TIMEOUT)


@pytest.mark.stride("S", "T", threat="a sniffed upload is replayed, or replayed once the server restarted")
@pytest.mark.fails_with("replay-allowed-equal-nonce", "nonces-in-memory")
def test_replay_refused_also_after_server_restart(provisioned_board: Board, device: DeviceIdentity,
                                                  server: ServerUnderTest, attacker: Attacker,
                                                  wire: WireProfile) -> None:
    """The board's captured upload re-sent verbatim is refused as replay (stating the last nonce, as
    the profile says where), and still is after the server restarted on the same database; nothing
    more is stored and the board's next upload is accepted."""
    upload_now(provisioned_board, device.nonce + 1)
    (request,) = attacker.captured_requests()
    stored = len(server.readings(device.device_id))
    (result,) = attacker.replay(request)
    verdict = expect_outcome(wire, result.response, Outcome.REPLAY, what="the board's upload replayed verbatim")
    assert wire.nonce.learn(verdict) == device.nonce + 1, verdict.describe()
    server.restart()
    (result,) = attacker.replay(request)
    expect_outcome(wire, result.response, Outcome.REPLAY, what="the same replay after a server restart")
    assert len(server.readings(device.device_id)) == stored
    upload_now(provisioned_board, device.nonce + 2)


@pytest.mark.stride("S", "T", threat="a recorded session is played back to a server")
@pytest.mark.fails_with("replay-allowed-equal-nonce", "nonces-in-memory")
def test_reference_capture_replays_once(server_factory: ServerFactory, test_pki, tmp_path: Path, evidence,
                                        wire: WireProfile) -> None:
    """The committed reference session (captures/reference/upload-session.pcap) replayed with no board
    against a fresh server holding the reference registry: the first pass is accepted upload by
    upload, in order; a second pass — also after a restart — is refused as replay."""
    if wire.name != "ecowatt-api":
        pytest.skip(f"the committed reference session is an ecowatt-api capture; the wire profile is {wire.name}")
    if server_factory.external is not None:
        pytest.skip("the reference registry (captures/reference/devices.json) is loaded into a built-in server; "
                    f"register it with {server_factory.external.url} and replay with captures/reference/README.md")
    factory = ServerFactory(tmp_path / "reference", load_devices(REFERENCE / "devices.json"), test_pki,
                            server_factory.defects)
    (tmp_path / "reference").mkdir()
    try:
        server = factory.start()
        replayer = Attacker(server)
        requests = [(flow.first_time, r) for flow in flows_from_pcap(REFERENCE / "upload-session.pcap")
                    for r in flow.http_requests() if wire.is_upload_path(r.target or "")]
        requests = [r for _, r in sorted(requests, key=lambda item: item[0])]
        assert len(requests) >= 3, f"reference capture holds {len(requests)} uploads; re-make it (record.py)"
        first = [replayer.replay(r)[0] for r in requests]
        evidence.note("first pass: " + ", ".join(str(r.status) for r in first))
        assert [r.status for r in first] == [200] * len(requests), [r.error or r.response.body for r in first]
        nonces = [json.loads(r.body)["nonce"] for r in requests]
        assert [json.loads(r.response.body)["nonce_updated"] for r in first if r.response] == nonces
        server.restart()
        for request in requests:
            (result,) = replayer.replay(request)
            expect_outcome(wire, result.response, Outcome.REPLAY, what="the reference session replayed again")
    finally:
        factory.close()


@pytest.mark.stride("S", "T", threat="an attacker without the key forges or rolls back a sniffed packet")
@pytest.mark.fails_with("nonce-advanced-before-mac")
def test_forged_mac_and_nonce_rollback_refused(provisioned_board: Board, device: DeviceIdentity,
                                               server: ServerUnderTest, attacker: Attacker, wire: WireProfile) -> None:
    """After two uploads: the second packet with the next nonce and its MAC kept (no key) is refused
    for a bad MAC; the first, older packet sent again (a rollback to a validly signed nonce) is
    refused as replay; neither stores anything nor moves the nonce, and the board's next upload is
    accepted."""
    upload_now(provisioned_board, device.nonce + 1)
    upload_now(provisioned_board, device.nonce + 2)
    older, newer = attacker.captured_uploads()
    stored = len(server.readings(device.device_id))
    forge = attacker.forge
    expect_outcome(wire, attacker.send(forge.with_nonce(newer, newer.nonce + 1)), Outcome.BAD_MAC,
                   what="the newer packet with the next nonce, MAC kept")
    expect_outcome(wire, attacker.send(forge.flip_mac(newer)), Outcome.BAD_MAC, what="the newer packet, MAC flipped")
    verdict = expect_outcome(wire, attacker.send(older), Outcome.REPLAY, what="the older packet sent again")
    assert wire.nonce.learn(verdict) == newer.nonce, verdict.describe()
    assert len(server.readings(device.device_id)) == stored
    assert server.last_nonce(device.device_id) == newer.nonce
    upload_now(provisioned_board, newer.nonce + 1)


class TestCrossDevice:
    """Device A (the board) and device B (registered with the server, never on the wire)."""

    @pytest.fixture
    def server(self, server_factory: ServerFactory, firmware: Index, wire: WireProfile) -> ServerUnderTest:
        """The test's server with a second lab device registered (TEST ONLY keys)."""
        other = lab_identity(wire, KeyStore(firmware.directory / "keys"), OTHER_DEVICE)
        server_factory.devices[OTHER_DEVICE] = DeviceKeys(OTHER_DEVICE, other.hmac_key, other.aes_key)
        return server_factory.start()

    @pytest.mark.stride("S", "T", threat="device A's traffic (or A's stolen key) writes readings as device B")
    @pytest.mark.fails_with("plaintext-device-id-trusted", "unknown-device-accepted", "device-id-copy-unchecked")
    def test_packet_relabelled_for_another_device_refused(self, provisioned_board: Board, device: DeviceIdentity,
                                                          server: ServerUnderTest, attacker: Attacker,
                                                          wire: WireProfile) -> None:
        """A's captured packet re-labelled as registered B is refused (for a bad MAC under per-device
        keys; as invalid under one global key, its plaintext naming A), as unregistered C refused as
        an unknown device; a packet signed with A's own key whose plaintext names B is refused as
        invalid. Nothing is stored for B or C, and B has no nonce."""
        upload_now(provisioned_board, device.nonce + 1)
        (sent,) = attacker.captured_uploads()
        forge = attacker.forge
        as_registered_b = Outcome.BAD_MAC if wire.key_scope == "device" else Outcome.INVALID
        expect_outcome(wire, attacker.send(forge.with_device_id(sent, OTHER_DEVICE)), as_registered_b,
                       what=f"A's packet re-labelled as registered {OTHER_DEVICE}")
        expect_outcome(wire, attacker.send(forge.with_device_id(sent, UNREGISTERED_DEVICE)), Outcome.UNKNOWN_DEVICE,
                       what=f"A's packet re-labelled as unregistered {UNREGISTERED_DEVICE}")
        readings = wire.open(sent, hmac_key=device.hmac_key, aes_key=None)
        as_b = Readings(OTHER_DEVICE, readings.timestamp, readings.readings)
        signed_by_a = forge.craft(device.device_id, sent.nonce + 1, as_b, key=device)
        expect_outcome(wire, attacker.send(signed_by_a), Outcome.INVALID,
                       what=f"a packet signed by A whose plaintext names {OTHER_DEVICE}")
        for other in (OTHER_DEVICE, UNREGISTERED_DEVICE):
            assert server.readings(other) == [], f"readings stored for {other}"
        assert server.last_nonce(OTHER_DEVICE) is None


@pytest.mark.stride("S", "T", threat="a nonce is reused on the wire after a reset, so its packet replays")
@pytest.mark.fails_with("nonce-not-persisted")
def test_sniffed_nonces_strictly_increase(provisioned_board: Board, device: DeviceIdentity,
                                          attacker: Attacker, evidence) -> None:
    """The nonces an observer sees on the wire over three uploads, a reset and two more uploads are
    exactly nonce+1 .. nonce+5: strictly increasing, none repeated."""
    board = provisioned_board
    for n in range(1, 4):
        upload_now(board, device.nonce + n)
    board.reset()
    board.console.expect_event("nonce.loaded", BOOT_TIMEOUT, nonce=str(device.nonce + 3))
    for n in range(4, 6):
        upload_now(board, device.nonce + n)
    nonces = [p.nonce for p in attacker.captured_uploads()]
    evidence.note(f"nonces on the wire: {nonces}")
    assert nonces == list(range(device.nonce + 1, device.nonce + 6))


@pytest.mark.stride("I", threat="an observer reads the inverter's readings off the wire")
@pytest.mark.fails_with("encrypt-flag-ignored")
def test_encrypted_readings_never_on_the_wire(provision: Provision, board: Board, server: ServerUnderTest,
                                              capture: Capture, evidence, wire: WireProfile) -> None:
    """With encryption provisioned, no trace of the plaintext (the stored readings as the format's
    plaintext writes them, e.g. ``"value":230.12``, or its fixed fields) appears in any reassembled
    stream of the board, neither as is nor after undoing base64 and zlib."""
    device = provision(encrypt=True)
    upload_now(board, device.nonce + 1)
    upload_now(board, device.nonce + 2)
    stored = server.readings(device.device_id)
    assert len(stored) >= 2, "nothing stored: the uploads did not reach the server"
    capture.sync()
    flows = flows_from_pcap(capture.path)
    assert any(f.bytes_sent("c2s") for f in flows), f"no board traffic in {capture.path}"
    needles = wire.codec.plaintext_markers([(r["register"], r["value"]) for r in stored])
    hits = [hit for needle in needles for hit in search(flows, needle) + search_decoded(flows, needle)]
    evidence.note(f"searched {len(needles)} reading values in {len(flows)} flows: {len(hits)} hits")
    assert not hits, "readings readable on the wire: " + "; ".join(h.describe() for h in hits[:5])


def tls_only(flow: Flow) -> dict[str, int]:
    """Record type counts of *flow*'s two directions; AssertionError if any byte is not a TLS record."""
    counts: dict[str, int] = {}
    for direction in ("c2s", "s2c"):
        try:
            records, trailing = parse_tls(flow.stream(direction))
        except RecordParseError as exc:
            raise AssertionError(f"{flow.key} [{direction}] carries non-TLS bytes: {exc}") from None
        assert trailing == 0, f"{flow.key} [{direction}] ends in {trailing} bytes that are no complete record"
        for name, n in type_counts(records).items():
            counts[name] = counts.get(name, 0) + n
    return counts


@pytest.mark.stride("I", "T", threat="over HTTPS plaintext still crosses the wire (or a broken handshake "
                                      "makes the board fall back to HTTP)")
@pytest.mark.fails_with("https-downgrade-to-http")
@pytest.mark.needs("sniff")
def test_https_carries_only_tls_records(provision: Provision, server_factory: ServerFactory, board: Board,
                                        capture: Capture, evidence) -> None:
    """Every byte of both directions of the board's connections parses as TLS records: an accepted
    upload to the genuine HTTPS server, and an attempt against a server whose certificate the board
    must refuse (no plain-HTTP fallback once the handshake failed)."""
    if capture.mode != "sniffer":
        pytest.skip("needs a sniffer: the recording relay does not sit in front of servers the test starts")
    genuine, impostor = server_factory.start(tls="on"), server_factory.start(tls="mitm")
    device = provision(server_url=genuine.url)
    upload_now(board, device.nonce + 1)
    board.trigger.require_console(board.name, "status")  # cycle_done below: before anything is provisioned
    provision(server_url=impostor.url, nonce=device.nonce + 1)
    board.console.expect_event("tls.failed", start_upload(board), unless=["upload.ok", "upload.rejected"])
    cycle_done(board)  # a fallback would happen after the failed handshake: let the cycle finish
    capture.sync()
    flows = flows_from_pcap(capture.path)
    evidence.attach_text("flows", format_table(summarize(flows)))
    by_server = {port: [f for f in flows if f.proto == "tcp" and f.key.server[1] == port]
                 for port in (genuine.address[1], impostor.address[1])}
    assert all(by_server.values()), f"board connections by server port: { {p: len(f) for p, f in by_server.items()} }"
    genuine_counts = [tls_only(f) for f in by_server[genuine.address[1]]]
    assert any(c.get("application_data") for c in genuine_counts), genuine_counts
    for flow in by_server[impostor.address[1]]:
        tls_only(flow)  # TLS 1.3 encrypts the handshake's tail too: record types cannot tell data apart here


@pytest.mark.stride("D", threat="replays of a device's sniffed packets lock that device out")
@pytest.mark.fails_with("rate-limit-per-device")
def test_replay_flood_does_not_block_next_upload(provisioned_board: Board, device: DeviceIdentity,
                                                 server: ServerUnderTest, attacker: Attacker, evidence,
                                                 wire: WireProfile, flood_allowed: None) -> None:
    """200 replays of the board's captured upload, 16 at a time, are all refused, and the board's next
    upload is still accepted within the usual timeout: an attacker's replays must not use up the
    device's rate-limit quota (the reference server limits per device *and* peer address)."""
    upload_now(provisioned_board, device.nonce + 1)
    (captured,) = attacker.captured_requests()
    results = attacker.replay(captured, times=FLOOD_REPLAYS, parallel=FLOOD_PARALLEL)
    outcomes = [attacker.verdict(r).outcome for r in results]
    evidence.note("flood: " + ", ".join(f"{o.value}: {outcomes.count(o)}" for o in sorted(set(outcomes))))
    assert all(o.refusal for o in outcomes), f"replays not refused: { {o.value for o in outcomes if not o.refusal} }"
    upload_now(provisioned_board, device.nonce + 2)


@pytest.mark.stride("S", "T", threat="a failed attempt's nonce is re-sent on retry (its packet then replays)")
@pytest.mark.fails_with("nonce-reused-on-retry")
def test_retry_after_503_uses_a_new_nonce(provision: Provision, board: Board, server: ServerUnderTest,
                                          capture: Capture, attacker: Attacker, server_host: str,
                                          wire: WireProfile) -> None:
    """A man in the middle answers the first upload with 503: the board retries with nonce+1 (it
    committed a new nonce), which the server accepts; the refused attempt's nonce is never accepted."""
    unavailable = build_response(503, "Service Unavailable",
                                 b'{"status":"error","error_code":"UNAVAILABLE","message":"maintenance"}')
    upload_path = wire.upload_path(wire.default_device_id)
    rules = [Rule.inject(unavailable, method=wire.upload_method, path=upload_path, limit=1)]
    # the proxy listens where the board reaches this host (its own 127.0.0.1 is itself on a real board)
    with MitmProxy(capture.server_address(server.address), rules=rules, listen=(server_host, 0)) as proxy:
        host, port = proxy.address
        device = provision(server_url=f"http://{host}:{port}")
        board.console.expect_event("upload.rejected", start_upload(board), nonce=str(device.nonce + 1),
                                   unless=["upload.ok"])
        board.console.expect_event("upload.ok", UPLOAD_TIMEOUT, nonce=str(device.nonce + 2),
                                   unless=["upload.gave_up", "tls.failed"])
    assert server.last_nonce(device.device_id) == device.nonce + 2
    assert {r["nonce"] for r in server.readings(device.device_id)} == {device.nonce + 2}
    on_wire = [p.nonce for p in attacker.captured_uploads()]
    # the sniffer sees both attempts (board -> proxy); the relay only what the proxy forwarded
    expected = [device.nonce + 1, device.nonce + 2] if capture.mode == "sniffer" else [device.nonce + 2]
    assert on_wire == expected, on_wire


@pytest.mark.stride("D", threat="a failing server makes the board retry without pause or bound: a retry storm "
                               "that floods the server and burns the device's nonces")
@pytest.mark.fails_with("upload-retry-storm")
def test_retries_against_an_unreachable_server_are_bounded_and_spaced(
    provision: Provision, board: Board, wire: WireProfile, server_host: str, evidence: Evidence
) -> None:
    """Pointed at a port that refuses connections, the board makes one upload cycle of at most the
    attempts its wire profile declares (``[device] upload_attempts``; else :data:`UNDECLARED_RETRIES`),
    each under a new nonce, at least the declared pause apart (``upload_retry_delay_s``), then gives up
    saying how many it made."""
    declared = wire.device.upload_attempts is not None
    attempts = wire.device.upload_attempts or UNDECLARED_RETRIES[0]
    pause = wire.device.upload_retry_delay_s if declared and wire.device.upload_retry_delay_s is not None \
        else UNDECLARED_RETRIES[1]
    evidence.note(f"retry bounds: at most {attempts} attempts, {pause:g} s apart "
                  + (f"(declared by wire profile {wire.name})" if declared else
                     f"(wire profile {wire.name} declares none: the harness's bounds for any firmware)"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind((server_host, 0))  # bound, never listening: connections are refused, the port stays ours
        host, port = closed.getsockname()[:2]
        device = provision(server_url=f"http://{host}:{port}")
        mark = board.console.mark()
        bound = start_upload(board) + attempts * (pause + UPLOAD_TIMEOUT)
        gave_up = board.console.expect_event("upload.gave_up", bound, since=mark, unless=["upload.ok"])
    sending = board.console.profile.event("upload.sending")
    sent = [(line.wall, found) for line in board.console.lines(mark) if (found := sending.search(line.text))]
    nonces = [int(found.group("nonce")) for _, found in sent]
    gaps = [later - earlier for (earlier, _), (later, _) in pairwise(sent)]
    evidence.measure("upload attempts in one cycle", len(sent), "", AtMost(attempts))
    assert len(sent) <= attempts, f"{len(sent)} attempts in one cycle (at most {attempts}): nonces {nonces}"
    if gaps:
        evidence.measure("shortest pause between attempts", round(min(gaps), 3), "s",
                         AtLeast(pause - RETRY_ARRIVAL_JITTER))
        assert min(gaps) >= pause - RETRY_ARRIVAL_JITTER, f"attempts {[round(g, 3) for g in gaps]} s apart"
    assert int(gave_up.group("attempts")) == len(sent), (gave_up.group(0), nonces)
    assert nonces == list(range(device.nonce + 1, device.nonce + 1 + len(sent))), nonces
