"""The DTLS server's session table, driven in memory (mbedTLS client buffers, a fake clock): the
session limit and the idle expiry, which the network tests cannot wait for."""

from __future__ import annotations

from mbedtls.tls import ClientContext, DTLSConfiguration, DTLSVersion, HandshakeStep, WantReadError, WantWriteError

from hil.sim.firmware.dtls_server import HANDSHAKE_TIMEOUT_S, MAX_SESSIONS, SESSION_IDLE_S, DtlsServer

PSK_ID, PSK = "iotlab2024", b"secretkey123456"  # TEST ONLY


class Log:
    """An IdfLog stand-in keeping ``"<level> <tag>: <msg>"`` lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def i(self, tag: str, msg: str) -> None:
        self.lines.append(f"I {tag}: {msg}")

    def w(self, tag: str, msg: str) -> None:
        self.lines.append(f"W {tag}: {msg}")

    def e(self, tag: str, msg: str) -> None:
        self.lines.append(f"E {tag}: {msg}")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(key: bytes = PSK):
    conf = DTLSConfiguration(
        pre_shared_key=(PSK_ID, key),
        validate_certificates=False,
        lowest_supported_version=DTLSVersion.DTLSv1_2,
        highest_supported_version=DTLSVersion.DTLSv1_2,
    )
    return ClientContext(conf).wrap_buffers(None)


def _handshake(server: DtlsServer, addr: tuple[str, int], key: bytes = PSK, rounds: int = 6) -> bool:
    """Pump one client's handshake through *server*; True when the client completed it."""
    client = _client(key)
    for _ in range(rounds):  # one client flight per round
        try:
            while client._handshake_state is not HandshakeStep.HANDSHAKE_OVER:
                client.do_handshake()
        except (WantReadError, WantWriteError):
            pass
        if client._handshake_state is HandshakeStep.HANDSHAKE_OVER:
            return True
        out = client.peek_outgoing(4096)
        if out:
            client.consume_outgoing(len(out))
            for reply in server.receive(out, addr):
                client.receive_from_network(reply)
    return client._handshake_state is HandshakeStep.HANDSHAKE_OVER


def test_session_limit_drops_the_next_peer_and_logs_it() -> None:
    log, clock = Log(), Clock()
    server = DtlsServer(PSK_ID, PSK, log, lambda data, addr: None, clock=clock)  # type: ignore[arg-type]
    assert all(_handshake(server, ("127.0.0.9", 40000 + n)) for n in range(MAX_SESSIONS))
    assert server.sessions == server.established == MAX_SESSIONS
    assert not _handshake(server, ("127.0.0.9", 50000))
    assert server.sessions == MAX_SESSIONS
    assert [line for line in log.lines if "session limit reached" in line] == [
        f"W coap: DTLS session limit reached ({MAX_SESSIONS}/{MAX_SESSIONS}): 127.0.0.9:50000 dropped"
    ]


def test_idle_sessions_expire_and_free_their_slot() -> None:
    log, clock = Log(), Clock()
    server = DtlsServer(PSK_ID, PSK, log, lambda data, addr: None, clock=clock)  # type: ignore[arg-type]
    assert _handshake(server, ("127.0.0.9", 40000))
    clock.now += SESSION_IDLE_S - 1
    server.expire()
    assert server.sessions == 1
    clock.now += 1
    server.expire()
    assert server.sessions == 0
    assert f"I coap: DTLS session with 127.0.0.9:40000 expired after {SESSION_IDLE_S:g} s idle" in log.lines


def test_half_open_handshake_expires_sooner() -> None:
    log, clock = Log(), Clock()
    server = DtlsServer(PSK_ID, PSK, log, lambda data, addr: None, clock=clock)  # type: ignore[arg-type]
    assert not _handshake(server, ("127.0.0.9", 40001), rounds=2)  # ClientHello, cookie: then silence
    assert server.sessions == 1 and server.established == 0
    assert server.next_deadline() == clock.now + HANDSHAKE_TIMEOUT_S
    clock.now += HANDSHAKE_TIMEOUT_S
    server.expire()
    assert server.sessions == 0
