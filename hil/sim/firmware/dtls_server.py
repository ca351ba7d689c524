"""The device's DTLS 1.2 PSK server (mbedTLS, as libcoap on the device uses it), transport-free.

:class:`DtlsServer` takes the datagrams of UDP port 5684 one at a time (``receive``) and returns
the datagrams to send back; the record layer, handshake, cookie and replay window are mbedTLS's own
(``python-mbedtls`` memory buffers), this module only keeps the table of peers:

- cookie exchange: a ClientHello without a valid cookie gets a HelloVerifyRequest from a throw-away
  context; nothing is kept until the cookie, bound to the peer's address and port, verifies;
- at most :data:`MAX_SESSIONS` sessions (handshaking or established); a peer beyond that is dropped
  (``sessions_full`` logged once until a slot frees);
- a handshake idle for :data:`HANDSHAKE_TIMEOUT_S`, a session idle for :data:`SESSION_IDLE_S`, is
  discarded (``session_expired``);
- the anti-replay window is on: a replayed or tampered record is dropped silently by mbedTLS.

A wrong key shows as a bad record MAC on the client's Finished, an unknown identity as mbedTLS's
unknown-identity error: both end the handshake with ``psk_failed`` (identity, reason) and leave no
session. The key is never logged (the ``coap-psk-logged`` defect is honoured by the caller).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from mbedtls.exceptions import TLSError
from mbedtls.tls import (
    DTLSConfiguration,
    DTLSVersion,
    HandshakeStep,
    HelloVerifyRequest,
    ServerContext,
    TLSWrappedBuffer,
    WantReadError,
    WantWriteError,
)

from hil.sim.firmware.idf_log import IdfLog

TAG = "coap"
MAX_SESSIONS = 4  # concurrent DTLS sessions, handshaking ones included (libcoap's default is larger)
SESSION_IDLE_S = 60.0  # an established session with no record for this long is discarded
HANDSHAKE_TIMEOUT_S = 10.0  # a handshake that has not progressed for this long is abandoned
MAX_DATAGRAM = 4096
CIPHERS = (  # what libcoap's coap-client-openssl / -gnutls offer for PSK
    "TLS-PSK-WITH-AES-128-CCM-8",
    "TLS-PSK-WITH-AES-128-CCM",
    "TLS-PSK-WITH-AES-128-GCM-SHA256",
    "TLS-PSK-WITH-AES-128-CBC-SHA256",
)
_REASONS = {  # mbedTLS error codes (ssl.h) a PSK handshake ends with, in words
    0x7180: "bad record MAC on Finished (wrong key)",
    0x6C80: "unknown PSK identity",
    0x7780: "fatal alert from the peer",
    0x7880: "peer closed the connection",
}
Address = tuple[str, int]
AppHandler = Callable[[bytes, Address], bytes | None]


class _PskStore(Mapping[str, bytes]):
    """The key lookup mbedTLS's PSK callback does: records the identity the client offered (for the
    log line). ``any_identity`` is the ``coap-psk-any-identity`` defect: the key is returned
    whatever identity is asked for."""

    def __init__(self, psk_id: str, psk: bytes, *, any_identity: bool) -> None:
        self._id, self._psk, self._any = psk_id, psk, any_identity
        self.offered: str | None = None

    def __getitem__(self, identity: str) -> bytes:
        self.offered = identity
        if identity == self._id or self._any:
            return self._psk
        raise KeyError(identity)

    def __iter__(self) -> Iterator[str]:
        return iter((self._id,))

    def __len__(self) -> int:
        return 1


@dataclass
class _Peer:
    """One peer's mbedTLS context and when it was last heard from."""

    buffer: TLSWrappedBuffer
    started: float
    last_seen: float
    identity: str = "-"
    established: bool = False


@dataclass(frozen=True)
class DtlsFaults:
    """The DTLS defects a board was started with (``hil.sim.defects``), as switches."""

    any_identity: bool = False  # coap-psk-any-identity
    cookie_unbound: bool = False  # dtls-cookie-unbound: cookie not tied to the peer's address
    replay_window_off: bool = False  # dtls-replay-window-off
    session_before_cookie: bool = False  # dtls-session-before-cookie

    @classmethod
    def from_names(cls, names: Iterable[str]) -> DtlsFaults:
        """From a board's active defect set."""
        names = frozenset(names)
        return cls(
            "coap-psk-any-identity" in names,
            "dtls-cookie-unbound" in names,
            "dtls-replay-window-off" in names,
            "dtls-session-before-cookie" in names,
        )


class DtlsServer:
    """The DTLS PSK endpoint of port 5684: peers by address, their handshakes and records."""

    def __init__(
        self,
        psk_id: str,
        psk: bytes,
        log: IdfLog,
        on_request: AppHandler,
        *,
        faults: DtlsFaults = DtlsFaults(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._on_request, self._faults, self._clock = log, on_request, faults, clock
        self._store = _PskStore(psk_id, psk, any_identity=faults.any_identity)
        self._context = ServerContext(
            DTLSConfiguration(
                validate_certificates=False,
                ciphers=CIPHERS,
                lowest_supported_version=DTLSVersion.DTLSv1_2,
                highest_supported_version=DTLSVersion.DTLSv1_2,
                anti_replay=not faults.replay_window_off,
                pre_shared_key_store=self._store,
            )
        )
        self._peers: dict[Address, _Peer] = {}
        self._full_logged = False

    @property
    def sessions(self) -> int:
        """Peers holding state: handshakes in progress and established sessions."""
        return len(self._peers)

    @property
    def established(self) -> int:
        """Sessions whose handshake completed."""
        return sum(peer.established for peer in self._peers.values())

    def receive(self, datagram: bytes, addr: Address) -> list[bytes]:
        """Process one datagram from *addr*; the datagrams to send back to it."""
        peer = self._peers.get(addr)
        if peer is None:
            return self._first_contact(datagram, addr)
        peer.last_seen = self._clock()
        peer.buffer.receive_from_network(datagram)
        if not peer.established:
            return self._handshake(peer, addr)
        return self._records(peer, addr)

    def expire(self) -> None:
        """Discard peers idle past their limit (``session_expired``)."""
        now = self._clock()
        for addr, peer in list(self._peers.items()):
            limit = SESSION_IDLE_S if peer.established else HANDSHAKE_TIMEOUT_S
            if now - peer.last_seen >= limit:
                state = "session" if peer.established else "handshake"
                self._log.i(TAG, f"DTLS {state} with {_fmt(addr)} expired after {limit:g} s idle")
                self._drop(addr)

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has something to do (``clock`` time), ``None`` with no peers."""
        deadlines = [
            peer.last_seen + (SESSION_IDLE_S if peer.established else HANDSHAKE_TIMEOUT_S)
            for peer in self._peers.values()
        ]
        return min(deadlines, default=None)

    def close(self) -> None:
        """Forget every peer (the chip stopped: RAM is gone, no close_notify is sent)."""
        self._peers.clear()

    def _first_contact(self, datagram: bytes, addr: Address) -> list[bytes]:
        if self._faults.session_before_cookie and not self._admit(addr):
            return []
        peer = self._new_peer(addr)
        if self._faults.session_before_cookie:
            self._peers[addr] = peer  # the defect: state before the cookie is verified
        peer.buffer.receive_from_network(datagram)
        out: list[bytes] = []
        try:
            _step(peer.buffer, out)
        except HelloVerifyRequest:
            if addr in self._peers:
                self._peers[addr] = self._new_peer(addr)  # a context is not reusable after a HVR
            return out + _drain(peer.buffer)
        except WantReadError:
            pass  # cookie verified, our flight is ready: the peer now gets a slot
        except TLSError as exc:
            self._peers.pop(addr, None)
            self._log.w(TAG, f"DTLS handshake with {_fmt(addr)} failed: {_reason(exc)}")
            return out + _drain(peer.buffer)
        if addr not in self._peers:
            if not self._admit(addr):
                return []
            self._peers[addr] = peer
        return out + _drain(peer.buffer)

    def _admit(self, addr: Address) -> bool:
        if len(self._peers) < MAX_SESSIONS:
            self._full_logged = False
            return True
        if not self._full_logged:
            self._full_logged = True
            self._log.w(TAG, f"DTLS session limit reached ({MAX_SESSIONS}/{MAX_SESSIONS}): {_fmt(addr)} dropped")
        return False

    def _new_peer(self, addr: Address) -> _Peer:
        buffer = self._context.wrap_buffers()
        host, port = addr[0], addr[1]
        buffer.setcookieparam(b"coap" if self._faults.cookie_unbound else f"{host}:{port}".encode())
        now = self._clock()
        return _Peer(buffer, now, now)

    def _handshake(self, peer: _Peer, addr: Address) -> list[bytes]:
        self._store.offered = None
        out: list[bytes] = []
        try:
            _step(peer.buffer, out)
        except WantReadError:
            self._note_identity(peer)
            return out + _drain(peer.buffer)
        except TLSError as exc:  # HelloVerifyRequest included: a new ClientHello mid-handshake
            self._note_identity(peer)
            self._log.e(TAG, f"PSK handshake failed: identity '{peer.identity}' from {_fmt(addr)}: {_reason(exc)}")
            out += _drain(peer.buffer)
            self._drop(addr)
            return out
        self._note_identity(peer)
        peer.established = True
        elapsed_ms = (self._clock() - peer.started) * 1000
        self._log.i(
            TAG,
            f"PSK handshake OK: identity '{peer.identity}' from {_fmt(addr)} in {elapsed_ms:.1f} ms "
            f"({_cipher(peer.buffer)})",
        )
        return out + _drain(peer.buffer) + self._records(peer, addr)

    def _note_identity(self, peer: _Peer) -> None:
        if self._store.offered is not None:
            peer.identity = _printable(self._store.offered)

    def _records(self, peer: _Peer, addr: Address) -> list[bytes]:
        out: list[bytes] = []
        while True:
            try:
                request = peer.buffer.read(MAX_DATAGRAM)
            except WantReadError:
                return out + _drain(peer.buffer)
            except TLSError as exc:
                self._log.i(TAG, f"DTLS session with {_fmt(addr)} closed: {_reason(exc)}")
                out += _drain(peer.buffer)
                self._drop(addr)
                return out
            if not request:  # nothing (more) buffered
                return out + _drain(peer.buffer)
            reply = self._on_request(request, addr)
            if reply is not None:
                peer.buffer.write(reply)
                out += _drain(peer.buffer)

    def _drop(self, addr: Address) -> None:
        self._peers.pop(addr, None)
        if len(self._peers) < MAX_SESSIONS:
            self._full_logged = False


def _step(buffer: TLSWrappedBuffer, out: list[bytes]) -> None:
    """Run the handshake until it needs the peer (``WantReadError``) or is over; records that did
    not fit mbedTLS's output buffer go to *out* on the way."""
    while buffer._handshake_state is not HandshakeStep.HANDSHAKE_OVER:
        try:
            buffer.do_handshake()
        except WantWriteError:
            out.extend(_drain(buffer))


def _drain(buffer: TLSWrappedBuffer) -> list[bytes]:
    """The records mbedTLS queued, as the datagrams it meant (one flight may be several)."""
    out = []
    while chunk := buffer.peek_outgoing(MAX_DATAGRAM):
        buffer.consume_outgoing(len(chunk))
        out.append(chunk)
    return out


def _cipher(buffer: TLSWrappedBuffer) -> str:
    """The negotiated suite's name (python-mbedtls returns str; its stub says bytes)."""
    name: object = buffer.cipher()
    return name.decode() if isinstance(name, bytes) else str(name)


def _reason(exc: TLSError) -> str:
    if isinstance(exc, HelloVerifyRequest):
        return "unexpected ClientHello without cookie"
    return _REASONS.get(getattr(exc, "err", 0), getattr(exc, "msg", "") or type(exc).__name__)


def _printable(identity: str) -> str:
    """The offered identity for a log line: attacker-controlled, so bounded and without control bytes."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in identity[:64])
    return clean or "<empty>"


def _fmt(addr: Address) -> str:
    return f"{addr[0]}:{addr[1]}"
