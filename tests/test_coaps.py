"""CoAP and CoAPS scenarios (seeds/sop-06-security-ota.md Part A; PROTOCOL.md "CoAP / CoAPS"): the
device serves CoAP on UDP 5683 and CoAP over DTLS 1.2 with a pre-shared key on 5684.

What a reviewer gets from them: a handshake with the right PSK and refusals with wrong ones (the
device's own log lines), a capture showing only DTLS records on 5684 and the plaintext reading on
5683, the handshake time against the SOP's 3 s, CoAP vs CoAPS bytes, and the attacks at the record
layer (replay, tampering, ClientHello flood, harvested cookies). Each scenario names the board
defects it must detect (``fails_with``); the defect meta-tests run it against each.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.board.board import Board
from hil.coap.board import BoardCoap, board_psk
from hil.coap.errors import DtlsHandshakeFailed
from hil.coap.measure import HANDSHAKE_TARGET_S, measure_handshakes
from hil.coap.probe import HANDSHAKE_RECORD, DtlsProbe
from hil.images.nvs_gen import DeviceIdentity
from hil.net.capture import Sniffer
from hil.net.fallback import CaptureRun
from hil.net.flows import flows_from_pcap
from hil.net.search import search, search_decoded
from hil.ota.board import OtaBoard
from hil.report.evidence import Evidence
from hil.report.limits import AtMost, Equals
from hil.server.under_test import ServerUnderTest

HANDSHAKES = 5  # handshake time is the median of these (SOP: < 3 s)
REFUSAL_TIMEOUT = 3.0  # s a wrong PSK is given to show anything but silence
FLOOD = 12  # ClientHellos from distinct source ports: three times the device's session table
DTLS_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}


def sessions(board: Board) -> tuple[int, int]:
    """(DTLS peers holding state, established sessions), from the console's ``coap sessions``."""
    mark = board.console.mark()
    board.console.send("coap sessions")
    match = board.console.expect(r"coap: sessions=(\d+) established=(\d+)", timeout=board.timing.step(), since=mark)
    return int(match[1]), int(match[2])


@dataclass
class CoapCapture:
    """The scenario's capture of the board's CoAP and CoAPS datagrams."""

    sniffer: Sniffer
    path: Path

    def stop(self) -> Path:
        """Drain and close the capture; the pcap's path."""
        if self.sniffer.running:
            self.sniffer.stop()
        return self.path


@pytest.fixture
def coap_capture(
    coap_endpoints: BoardCoap, board: Board, capture_run: CaptureRun, request: pytest.FixtureRequest, evidence: Evidence
) -> Iterator[CoapCapture]:
    """A capture of the board's UDP traffic (CoAP 5683, CoAPS 5684) on its ``network_interface``, in the report."""
    path = capture_run.path_for(request.node.nodeid, "coap")  # the test's own `capture` has the plain name
    sniffer = Sniffer(
        path,
        host=coap_endpoints.coaps.host,
        iface=board.spec.network_interface or "lo",
        extra_filter="udp",  # the board's datagrams (and the capture's own drain sentinel)
    )
    capture = CoapCapture(sniffer.start(), path)
    try:
        yield capture
    finally:
        capture.stop()
        evidence.attach_file("CoAP/CoAPS capture (pcap)", path)


def dtls_records(pcap: Path, port: int) -> list[list[int]]:
    """Per datagram to or from ``port``, the DTLS record content types tshark decodes in it."""
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark is not installed: .ci/install installs it (apt package tshark)", pytrace=False)
    done = subprocess.run(
        [tshark, "-r", str(pcap), "-d", f"udp.port=={port},dtls", "-Y", f"udp.port=={port}",
         "-T", "fields", "-e", "dtls.record.content_type"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return [[int(t) for t in line.split(",") if t] for line in done.stdout.splitlines()]


@pytest.mark.stride("S", threat="a client without the pre-shared key talks to the device")
def test_correct_psk_completes_the_handshake_and_reads_the_sensor(
    provisioned_board: Board, coap_endpoints: BoardCoap, evidence: Evidence
) -> None:
    """With the provisioned identity and key the DTLS handshake completes, ``GET /sensor`` returns
    the reading, and the device logs the identity it accepted. Handshake time: median of several."""
    with coap_endpoints.connect() as client:
        reading = client.get("sensor").json()
        assert set(reading) == {"val", "temp"}, reading
        assert client.handshake is not None
    provisioned_board.console.expect_event(
        "coap.psk_ok", provisioned_board.timing.step(), identity=coap_endpoints.coaps.psk_identity
    )
    figures = measure_handshakes(coap_endpoints.coaps, HANDSHAKES)
    evidence.measure("DTLS-PSK handshake, median", figures.median_s, "s", AtMost(HANDSHAKE_TARGET_S))
    evidence.measure("DTLS-PSK handshake, p95", figures.p95_s, "s", AtMost(HANDSHAKE_TARGET_S))
    evidence.note(f"cipher suite {figures.cipher}; {HANDSHAKES} handshakes")


@pytest.mark.stride("S", "I", threat="a wrong pre-shared key or identity gets a DTLS session")
@pytest.mark.parametrize(
    "identity, key",
    [
        pytest.param(None, b"not-the-key-12345", id="wrong-key"),
        pytest.param("intruder", None, id="wrong-identity", marks=pytest.mark.fails_with("coap-psk-any-identity")),
        # mbedTLS offers no PSK suite without an identity: the device refuses the ClientHello itself
        pytest.param("", None, id="empty-identity"),
    ],
)
def test_wrong_psk_gets_no_application_data(
    provisioned_board: Board, coap_endpoints: BoardCoap, identity: str | None, key: bytes | None
) -> None:
    """A wrong key, an identity the device does not know, or an empty one: no session and no data
    within an explicit timeout (DTLS answers a wrong PSK with silence or an alert, never data), the
    device logs the failure (with the identity offered, when one was), and holds no session afterwards."""
    offered = coap_endpoints.coaps.psk_identity if identity is None else identity
    try:
        client = coap_endpoints.connect(identity=identity, key=key, handshake_timeout=REFUSAL_TIMEOUT)
    except DtlsHandshakeFailed:
        pass  # silence or an alert until the bound: refused
    else:
        assert not client.get("sensor").ok, f"identity {offered!r} with the wrong PSK read the sensor"
        raise AssertionError(f"identity {offered!r} with the wrong PSK completed a DTLS handshake")
    step = provisioned_board.timing.step()
    if offered:
        provisioned_board.console.expect_event("coap.psk_failed", step, identity=offered, unless=["coap.psk_ok"])
    else:
        provisioned_board.console.expect_event("coap.handshake_failed", step, unless=["coap.psk_ok"])
    assert sessions(provisioned_board) == (0, 0), "a refused client left DTLS state behind"


@pytest.mark.stride("I", threat="someone on the network reads the sensor values")
def test_coaps_capture_holds_only_dtls_records(
    provisioned_board: Board, coap_endpoints: BoardCoap, coap_capture: CoapCapture, evidence: Evidence
) -> None:
    """The capture of one CoAPS exchange is DTLS records only (tshark decodes every datagram on 5684
    as handshake, change-cipher-spec, alert or application data) and holds the reading nowhere, not
    even base64- or zlib-decoded; the same read over plain CoAP is in the clear (so the check can fail).
    CoAP vs CoAPS bytes per request and the handshake's bytes go in the report (the SOP's DDR item)."""
    with coap_endpoints.connect(secure=False) as plain:
        clear = plain.get("sensor")
    with coap_endpoints.connect() as secure:
        private = secure.get("sensor")
        handshake = secure.handshake
    pcap = coap_capture.stop()
    records = dtls_records(pcap, coap_endpoints.coaps.port)
    assert records and all(r and set(r) <= DTLS_TYPES.keys() for r in records), records
    assert {HANDSHAKE_RECORD, 23} <= {t for r in records for t in r}, records
    flows = flows_from_pcap(pcap)
    secure_flows = [f for f in flows if coap_endpoints.coaps.port in (f.key.server[1], f.key.client[1])]
    plain_flows = [f for f in flows if coap_endpoints.coap.port in (f.key.server[1], f.key.client[1])]
    assert search(plain_flows, clear.payload), "the plain CoAP reading is not in the capture: the check is blind"
    leaks = search(secure_flows, private.payload, encodings=("raw", "hex", "base64")) + search_decoded(
        secure_flows, private.payload
    )
    assert not leaks, f"the CoAPS reading {private.text!r} is readable in the capture: {leaks[:3]}"
    assert handshake is not None
    evidence.measure("CoAP GET /sensor, bytes (request + response)", clear.wire.total_bytes, "B")
    evidence.measure("CoAPS GET /sensor, bytes (request + response)", private.wire.total_bytes, "B")
    evidence.measure("DTLS-PSK handshake, bytes", handshake.wire.total_bytes, "B")
    evidence.measure("DTLS overhead per GET", private.wire.total_bytes - clear.wire.total_bytes, "B")


@pytest.mark.stride("T", threat="a recorded or altered DTLS record is accepted again")
@pytest.mark.fails_with("dtls-replay-window-off")
def test_replayed_and_tampered_records_are_dropped(provisioned_board: Board, coap_endpoints: BoardCoap) -> None:
    """One ``GET /sensor`` record sent again verbatim from the same source is dropped by the replay
    window, and a copy with one ciphertext byte flipped fails its MAC: the device answers and logs
    the original request and a fresh one behind them, nothing else."""
    coaps = coap_endpoints.coaps
    mark = provisioned_board.console.mark()
    with DtlsProbe(coaps.host, coaps.psk_identity, coaps.psk_key, coaps.port) as probe:
        source = probe.source
        probe.handshake()
        record = probe.get("sensor", mid=1)
        first = probe.response()
        assert first is not None and first.mid == 1, "no answer to the original request"
        probe.sock.send(record)  # the very same record again
        tampered = bytearray(record)
        tampered[-1] ^= 0x01  # in the MAC/tag: the record no longer authenticates
        probe.sock.send(bytes(tampered))
        # A fresh request behind them: the device handles datagrams in order, so an answer to the
        # replay or the tampered copy would arrive before this one's (no waiting on silence).
        probe.get("sensor", mid=2)
        answered: list[int] = []
        while (response := probe.response()) is not None:
            answered.append(response.mid)
            if response.mid == 2:
                break
        assert answered == [2], f"answers to message ids {answered}: the replayed or tampered record was served"
    console, served = provisioned_board.console, re.compile(rf"coap: GET /sensor -> 2\.05 \(coaps from {re.escape(source)}\)")
    console.expect(served, provisioned_board.timing.step(), since=mark)  # the original request
    console.expect(served, provisioned_board.timing.step())  # the fresh one: the log is in order too
    logged = [line.text for line in console.lines(mark) if served.search(line.text)]
    assert len(logged) == 2, logged


@pytest.mark.stride("D", threat="a flood of ClientHellos from forged sources exhausts the device")
@pytest.mark.fails_with("dtls-session-before-cookie")
def test_clienthello_flood_allocates_no_state(provisioned_board: Board, coap_endpoints: BoardCoap) -> None:
    """Cookieless ClientHellos from many source ports each get a HelloVerifyRequest and nothing else:
    the device holds no DTLS state for them, and the legitimate client completes its handshake while
    they are outstanding."""
    coaps = coap_endpoints.coaps
    probes = [DtlsProbe(coaps.host, "flood", b"not-the-key", coaps.port) for _ in range(FLOOD)]
    try:
        for probe in probes:
            probe.client_hello()
        answers = [probe.receive() for probe in probes]
        assert all(a is not None and a[0] == HANDSHAKE_RECORD for a in answers), "a ClientHello went unanswered"
        assert sessions(provisioned_board) == (0, 0), "the flood allocated DTLS state before any cookie came back"
        with coap_endpoints.connect() as client:
            assert client.get("sensor").ok, "the legitimate client was locked out during the flood"
    finally:
        for probe in probes:
            probe.close()


@pytest.mark.stride("S", "D", threat="a cookie harvested from one address opens handshakes from others")
@pytest.mark.fails_with("dtls-cookie-unbound")
def test_harvested_cookie_does_not_open_handshakes_from_other_sources(
    provisioned_board: Board, coap_endpoints: BoardCoap
) -> None:
    """The ClientHello that carries a valid cookie, re-sent from other source ports, gets a fresh
    HelloVerifyRequest there (the cookie is bound to its source): only the harvester holds state."""
    coaps = coap_endpoints.coaps
    with DtlsProbe(coaps.host, "harvester", b"not-the-key", coaps.port) as harvester:
        harvester.client_hello()
        verify = harvester.receive()
        assert verify is not None and verify[0] == HANDSHAKE_RECORD, "no HelloVerifyRequest"
        harvester.feed(verify)
        with_cookie = harvester.client_hello()
        copies = [DtlsProbe(coaps.host, "harvester", b"not-the-key", coaps.port) for _ in range(3)]
        try:
            for copy in copies:
                copy.sock.send(with_cookie)
                copy.receive()  # a HelloVerifyRequest (bound cookie) or a ServerHello flight (unbound)
            held, _ = sessions(provisioned_board)
        finally:
            for copy in copies:
                copy.close()
    assert held == 1, f"{held} DTLS peers hold state after 3 copies of one cookie (only the harvester should)"


@pytest.mark.stride("E", "T", threat="writes reach the device without DTLS")
@pytest.mark.fails_with("coap-ota-over-plain")
def test_writes_over_plain_coap_are_refused_in_secure_only_mode(
    provisioned_board: Board, device: DeviceIdentity, coap_endpoints: BoardCoap
) -> None:
    """The reference device is secure-only: plain CoAP answers ``GET /sensor`` but refuses ``PUT
    /light`` and ``POST /ota`` with 4.01 and starts no update check; over CoAPS the write is served."""
    assert device.coap_mode == "secure-only"
    mark = provisioned_board.console.mark()
    with coap_endpoints.connect(secure=False) as plain:
        assert plain.get("sensor").code == "2.05"
        assert plain.put("light", "1").code == "4.01"
        assert plain.post("ota").code == "4.01"
    provisioned_board.console.assert_no_event("ota.checking", 1.0, since=mark)
    with coap_endpoints.connect() as secure:
        assert secure.put("light", "1").code == "2.04"
        assert secure.get("light").text == "1"
        assert secure.put("light", "on").code == "4.00"


@pytest.mark.stride("I", threat="the pre-shared key leaks through the device's log")
@pytest.mark.fails_with("coap-psk-logged")
def test_psk_never_in_the_device_log(provisioned_board: Board, coap_endpoints: BoardCoap) -> None:
    """Neither the boot (CoAP server start) nor a session prints the key, in any usual encoding."""
    with coap_endpoints.connect() as client:
        assert client.get("sensor").ok
    key = coap_endpoints.coaps.psk_key
    forms = {key, key.hex().encode(), key.hex().upper().encode()}
    # a count, not the lines: the assertion's report must not carry the key itself
    leaking = sum(1 for line in provisioned_board.console.lines(0)
                  if any(form.decode(errors="replace") in line.text for form in forms))
    assert leaking == 0, f"{leaking} console line(s) print the PSK"


class TestOtaOverCoaps:
    """``POST /ota`` over CoAPS starts the signed v1 → v2 update of the OTA scenarios."""

    @pytest.fixture
    def server(self, ota_as_server: ServerUnderTest) -> ServerUnderTest:
        """The update server is this class's server under test (provisioning points at it)."""
        return ota_as_server

    @pytest.mark.stride("T", threat="the update trigger cannot be reached securely")
    def test_post_ota_over_coaps_updates_v1_to_v2(self, ota_board: OtaBoard, request: pytest.FixtureRequest) -> None:
        """2.04 Changed, then the device checks, downloads, verifies, reboots and confirms v2."""
        spec = ota_board.board.spec
        assert spec.network_address, f"board {spec.name} has no network_address for CoAP"
        psk = board_psk(spec.name, virtual=spec.has("virtual"), device=ota_board.device, environ={},
                        identity_env="HIL_COAP_PSK_ID", key_env="HIL_COAP_PSK")
        endpoints = BoardCoap.for_board(spec.name, spec.network_address, psk)
        # the app starts its CoAP servers before it serves the console: once it answers they listen
        assert ota_board.running_version() == ota_board.running
        try:
            with endpoints.connect() as client:
                assert client.post("ota").code == "2.04"
        finally:
            endpoints.close()
        v2 = ota_board.version_of("app-v2")
        ota_board.expect_downloaded(v2)
        ota_board.expect_boot(v2, swap_type="test")
        ota_board.expect_confirmed(v2)
        assert ota_board.running_version() == v2
