"""Each CoAP/DTLS defect of the catalogue changes what a peer on the network, or the log, observes
(and the same check passes on the sound board, so it can fail)."""

from __future__ import annotations

import pytest

from hil.sim.firmware.dtls_server import MAX_SESSIONS
from sim_coap.conftest import PSK, PSK_ID
from hil.coap.probe import DtlsProbe


@pytest.mark.parametrize("defects", [(), ("coap-psk-any-identity",)])
def test_any_identity_accepts_a_foreign_identity(make_board, coap_client, defects) -> None:
    board = make_board(defects)
    got = "val" in coap_client(f"coaps://{board.address}/sensor", identity="intruder", key=PSK).stdout
    assert got == bool(defects)


@pytest.mark.parametrize("defects", [(), ("coap-ota-over-plain",)])
def test_ota_over_plain_serves_writes_without_dtls(make_board, coap_client, defects) -> None:
    board = make_board(defects)
    code = "2.04" if defects else "4.01"
    coap_client(f"coap://{board.address}/light", method="put", payload="1")
    board.rt.wait_for(rf"coap: PUT /light -> {code} \(coap from ")
    coap_client(f"coap://{board.address}/ota", method="post")
    board.rt.wait_for(rf"coap: POST /ota -> {code} \(coap from ")
    if defects:
        board.rt.wait_for(r"ota: (Checking for updates at|Update check failed)")


@pytest.mark.parametrize("defects", [(), ("coap-psk-logged",)])
def test_psk_logged(make_board, coap_client, defects) -> None:
    board = make_board(defects)
    coap_client(f"coaps://{board.address}/sensor", identity=PSK_ID, key=PSK)
    board.rt.wait_for(r"coap: GET /sensor -> 2\.05")
    assert any(PSK in line for line in board.rt.lines) == bool(defects)


@pytest.mark.parametrize("defects", [(), ("dtls-replay-window-off",)])
def test_replayed_record_is_answered_only_without_the_window(make_board, defects) -> None:
    board = make_board(defects)
    probe = DtlsProbe(board.address, PSK_ID, PSK.encode())
    try:
        probe.handshake()
        record = probe.get("sensor")
        assert probe.response() is not None
        probe.sock.send(record)  # the very same record again
        assert (probe.response() is not None) == bool(defects)
    finally:
        probe.close()
    assert len(board.rt.wait_for(r"coap: GET /sensor -> 2\.05", 1)) == (2 if defects else 1)


def _flood(address: str, count: int) -> list[DtlsProbe]:
    """*count* clients (distinct source ports) that each send one cookieless ClientHello."""
    probes = [DtlsProbe(address, PSK_ID, b"not-the-key") for _ in range(count)]
    for probe in probes:
        probe.client_hello()
    return probes


@pytest.mark.parametrize("defects", [(), ("dtls-session-before-cookie",)])
def test_clienthello_flood_allocates_sessions_only_under_the_defect(make_board, coap_client, defects) -> None:
    board = make_board(defects)
    probes = _flood(board.address, 2 * MAX_SESSIONS)
    try:
        answered = probes[:MAX_SESSIONS] if defects else probes  # a full table drops the rest
        for probe in answered:
            assert probe.sock.recv(4096)[0] == 22  # a handshake record: the HelloVerifyRequest
        if defects:
            board.rt.wait_for(rf"coap: DTLS session limit reached \({MAX_SESSIONS}/{MAX_SESSIONS}\)")
        assert board.sessions() == (MAX_SESSIONS if defects else 0)
        got = "val" in coap_client(f"coaps://{board.address}/sensor", identity=PSK_ID, key=PSK).stdout
        assert got != bool(defects)  # the legitimate client is locked out only under the defect
    finally:
        for probe in probes:
            probe.close()


@pytest.mark.parametrize("defects", [(), ("dtls-cookie-unbound",)])
def test_cookie_from_one_source_opens_sessions_from_others_only_when_unbound(make_board, defects) -> None:
    board = make_board(defects)
    harvester = DtlsProbe(board.address, PSK_ID, b"not-the-key")
    harvester.client_hello()
    harvester.buffer.receive_from_network(harvester.sock.recv(4096))  # the HelloVerifyRequest
    second_hello = harvester.client_hello()  # the ClientHello carrying the cookie
    spoofed = [DtlsProbe(board.address, PSK_ID, b"not-the-key") for _ in range(3)]
    try:
        for probe in spoofed:
            probe.sock.send(second_hello)  # the harvested cookie from other source ports
            probe.sock.recv(4096)  # HelloVerifyRequest (bound) or ServerHello flight (unbound)
        assert board.sessions() == 1 + (3 if defects else 0)  # the harvester's own handshake + the copies
    finally:
        for probe in [harvester, *spoofed]:
            probe.close()
