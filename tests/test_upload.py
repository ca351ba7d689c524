"""Upload scenarios: the device's signed, replay-protected upload cycle against the server
(PROTOCOL.md "Upload"), end to end on a provisioned board, in the session's wire format
(``--hil-wire-profile``: the profile builds, parses and judges the packets).

Each scenario names the defects it must detect (``fails_with``): virtual-board defects (the device
side) and reference-server defects (the server side). The defect meta-tests in selftest/ run each
scenario against each named defect and require a failure.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hil.adversarial.certificates import CASES as CERTIFICATE_CASES
from hil.adversarial.certificates import CertificateSet, IssuedCertificate
from hil.board.board import Board
from hil.board.contract import BOOT_TIMEOUT, Provision, start_upload, upload_now
from hil.images.nvs_gen import DeviceIdentity
from hil.net.attacker import Attacker
from hil.protocol.errors import ProtocolError
from hil.server.under_test import ServerFactory, ServerUnderTest
from hil.wire.expect import expect_outcome, expect_refused
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile


@pytest.mark.stride("T", "I", threat="readings altered or lost between the inverter and the server")
@pytest.mark.fails_with("mac-over-payload-only", "hmac-key-in-url")
def test_upload_accepted_and_stored_intact(provisioned_board: Board, device: DeviceIdentity, wire: WireProfile,
                                           server: ServerUnderTest, attacker: Attacker, evidence) -> None:
    """An upload is accepted (nonce advanced) and the server stores exactly the readings the board
    put on the wire, its MAC verifying under the device's key as the wire format defines it."""
    upload_now(provisioned_board, device.nonce + 1)
    (sent,) = attacker.captured_uploads()
    assert sent.nonce == device.nonce + 1 and not sent.encrypted
    readings = wire.open(sent, hmac_key=device.hmac_key, aes_key=None)
    stored = server.readings(device.device_id)
    evidence.attach_text("stored readings", "\n".join(f"{r['register']}={r['value']} t={r['timestamp']} "
                                                      f"nonce={r['nonce']}" for r in stored))
    assert [(r["register"], r["value"], r["timestamp"], r["nonce"]) for r in stored] == \
        [(r.register, r.value, readings.timestamp, sent.nonce) for r in readings.readings]
    assert server.last_nonce(device.device_id) == sent.nonce


@pytest.mark.stride("S", "T", threat="a nonce is reused after a reset or power loss, so a replay is accepted")
@pytest.mark.needs("power-cut")
@pytest.mark.fails_with("nonce-not-persisted")
def test_nonces_increase_across_resets_and_power_cuts(provisioned_board: Board, device: DeviceIdentity,
                                                      server: ServerUnderTest) -> None:
    """Nonces strictly increase across uploads, a reset, and a power cut between the NVS commit and
    the send: the nonce committed before the cut is never sent again."""
    board, console = provisioned_board, provisioned_board.console
    first = device.nonce + 1
    upload_now(board, first)
    board.reset()
    console.expect_event("nonce.loaded", BOOT_TIMEOUT, nonce=str(first))
    upload_now(board, first + 1)

    cut = board.arm_power_cut("upload.nonce_committed", restore=True)
    cut.wait(start_upload(board))
    lost = first + 2  # committed to NVS, then the power went before it was sent
    console.expect_event("nonce.loaded", BOOT_TIMEOUT, nonce=str(lost))
    upload_now(board, lost + 1)
    if server.builtin:
        assert server.last_nonce(device.device_id) == lost + 1


@pytest.mark.stride("S", "T", threat="the nonce counter overflows past its last value and old nonces go out again")
@pytest.mark.fails_with("nonce-wraps-at-max")
def test_last_nonce_is_sent_then_the_device_stops(provision: Provision, board: Board, server: ServerUnderTest,
                                                   wire: WireProfile, attacker: Attacker) -> None:
    """Provisioned one below the wire format's largest nonce, the board sends that largest nonce (the
    limit itself is usable, and accepted), then refuses the next upload saying its nonce space is
    exhausted: nothing more on the wire (no wrap to 0, whose packets would replay), its NVS nonce
    still the largest."""
    if not server.builtin:  # a team's server would refuse this device for good afterwards
        pytest.skip(f"leaves the device's last nonce at {wire.nonce.maximum} on the server under test "
                    f"({server.url}): it could never upload again; runs against the built-in server")
    largest = wire.nonce.maximum
    device = provision(nonce=largest - 1)
    upload_now(board, largest)
    mark = board.console.mark()
    board.console.expect_event("nonce.exhausted", start_upload(board), since=mark, nonce=str(largest),
                               unless=["upload.sending", "upload.ok", "upload.rejected"])
    assert [p.nonce for p in attacker.captured_uploads()] == [largest]
    if server.builtin:
        assert server.last_nonce(device.device_id) == largest
    board.reset()
    board.console.expect_event("nonce.loaded", BOOT_TIMEOUT, nonce=str(largest))


@pytest.mark.stride("S", "T", threat="forged packets burn the device's nonces (denial of its next upload)")
@pytest.mark.fails_with("nonce-advanced-before-mac", "mac-over-payload-only")
def test_forged_mac_refused_without_burning_nonce(provisioned_board: Board, device: DeviceIdentity, wire: WireProfile,
                                                  server: ServerUnderTest, attacker: Attacker) -> None:
    """The board's packet re-sent with the next nonce and a flipped MAC is refused for a bad MAC, and
    the board's own next upload with that nonce is still accepted."""
    upload_now(provisioned_board, device.nonce + 1)
    (sent,) = attacker.captured_uploads()
    forged = attacker.forge.flip_mac(attacker.forge.with_nonce(sent, sent.nonce + 1))
    expect_outcome(wire, attacker.send(forged), Outcome.BAD_MAC, what="the board's packet, next nonce, MAC flipped")
    if server.builtin:
        assert [e["code"] for e in server.events(device_id=device.device_id)] == ["INVALID_HMAC"]
    upload_now(provisioned_board, sent.nonce + 1)


@pytest.mark.stride("T", "S", threat="an attacker without the key alters a captured packet and it is accepted")
@pytest.mark.fails_with("replay-allowed-equal-nonce", "mac-over-payload-only")
def test_tampered_packets_refused(provisioned_board: Board, device: DeviceIdentity, server: ServerUnderTest,
                                  wire: WireProfile, attacker: Attacker, evidence) -> None:
    """Every mutation of the board's captured packet that an attacker without the key can make (MAC
    bytes, nonce old/equal/huge, payload bytes, device id, the flags outside the MAC) is refused and
    stores nothing; the last nonce stays the board's."""
    upload_now(provisioned_board, device.nonce + 1)
    (sent,) = attacker.captured_uploads()
    outcomes = []
    for forged in attacker.forge.mutations(sent, key=None):
        verdict = expect_refused(wire, attacker.send(forged.packet), what=f"forgery {forged.name}")
        outcomes.append(f"{forged.name}: {verdict.describe()}")
    evidence.attach_text("forgeries", "\n".join(outcomes))
    if server.builtin:  # only the board's own upload is stored, and its nonce is still the last
        assert {r["nonce"] for r in server.readings(device.device_id)} == {sent.nonce}
        assert server.last_nonce(device.device_id) == sent.nonce


@pytest.mark.stride("I", "T", threat="readings readable on the wire, or altered by encryption")
@pytest.mark.fails_with("encrypt-flag-ignored")
def test_encrypted_upload_stores_same_readings(provision: Provision, server: ServerUnderTest, wire: WireProfile,
                                               attacker: Attacker, board: Board) -> None:
    """With encryption provisioned the packet says ``encrypted:true``, its payload is AES-128-CBC
    under the device key, and the server stores exactly the readings inside."""
    device = provision(encrypt=True)
    mark = board.console.mark()
    upload_now(board, device.nonce + 1)
    (sent,) = attacker.captured_uploads()
    assert sent.encrypted, "encryption is provisioned but the packet went out with encrypted:false"
    if "mode" in board.console.profile.fields("upload.sending"):  # what the board says it sent, as sent
        said = board.console.expect_event("upload.sending", 0, since=mark, nonce=str(sent.nonce))
        assert said.group("mode") == "encrypted", said.group(0)
    with pytest.raises(ProtocolError):
        wire.codec.unwrap(sent, aes_key=None)  # not readable without the AES key
    readings = wire.open(sent, hmac_key=device.hmac_key, aes_key=device.aes_key)
    stored = server.readings(device.device_id)
    assert [(r["register"], r["value"]) for r in stored] == [(r.register, r.value) for r in readings.readings]


@pytest.mark.stride("S", "I", threat="a man in the middle with his own certificate receives the readings")
@pytest.mark.fails_with("tls-no-verify")
def test_mitm_certificate_refused(provision: Provision, server_factory: ServerFactory, board: Board) -> None:
    """Over HTTPS the board uploads to the server its CA vouches for, and refuses a server whose
    certificate comes from another CA (same names): handshake failure, nothing sent."""
    genuine = server_factory.start(tls="on")
    device = provision(server_url=genuine.url)
    upload_now(board, device.nonce + 1)

    mitm = server_factory.start(tls="mitm")
    provision(server_url=mitm.url, nonce=device.nonce + 1)
    board.console.expect_event("tls.failed", start_upload(board), unless=["upload.ok", "upload.rejected"])
    assert mitm.readings() == [] and mitm.events() == []


# Every chain but the control is wrong in one way: a board that checks nothing accepts them all, one that
# checks the chain but not the name accepts the one for another host.
NO_VERIFY = pytest.mark.fails_with("tls-no-verify")
NO_HOSTNAME = pytest.mark.fails_with("tls-hostname-not-checked")
CERTIFICATES = [pytest.param(c.name, marks=[] if c.must_accept else [NO_VERIFY, *([NO_HOSTNAME] if c.other_host else [])])
                for c in CERTIFICATE_CASES]  # fmt: skip


@pytest.mark.stride("S", "I", threat="a server certificate valid but wrong in one way (host, dates, usage, issuer) "
                                     "is trusted: an impostor receives the readings")
@pytest.mark.parametrize("case", CERTIFICATES)
def test_certificate_wrong_in_one_way_refused(case: str, provision: Provision, adversarial_certificates: CertificateSet,
                                              serve_certificate: Callable[[IssuedCertificate], ServerUnderTest],
                                              board: Board, evidence) -> None:
    """Over HTTPS, trusting the set's CA, the board uploads to a server presenting the control chain and
    refuses one presenting a chain wrong in one way (``hil.adversarial.certificates``): the TLS failure
    on its console, nothing sent (nothing stored, no security event)."""
    issued = adversarial_certificates[case]
    evidence.note(issued.case.describe())
    server = serve_certificate(issued)
    device = provision(server_url=server.url, ca_cert=server.ca_pem)
    if issued.case.must_accept:
        upload_now(board, device.nonce + 1)
        assert server.last_nonce(device.device_id) == device.nonce + 1
        return
    failed = board.console.expect_event("tls.failed", start_upload(board), unless=["upload.ok", "upload.rejected"])
    evidence.note(f"the board: {failed.group(0).strip()}")
    assert server.readings() == [] and server.events() == []
