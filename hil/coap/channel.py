"""Datagram channels a CoAP client talks through: plain UDP, and DTLS 1.2 with a pre-shared key on
python-mbedtls (the device's own stack), both counting their bytes on the wire (:class:`WireStats`).

Every wait has a deadline: a DTLS peer that does not like the PSK usually says nothing at all, so
silence must end in an error that names the peer, the identity (never the key) and what to check.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Protocol

from mbedtls import tls
from mbedtls.exceptions import TLSError

from hil.coap.errors import CoapError, DtlsHandshakeFailed, DtlsHandshakeTimeout
from hil.coap.wire import Handshake, WireStats

MAX_DATAGRAM = 65535
# mbedTLS retransmits a handshake flight from its own timer, run when do_handshake is called: poll
# the socket this often so a lost flight is resent on time (RFC 6347's initial 1 s timer).
HANDSHAKE_POLL_S = 0.05
# Offered by default: the PSK key exchanges only. A certificate suite first in the list makes some
# servers (GnuTLS's) pick it, find no certificate and stall; a PSK device offers none either.
PSK_KEY_EXCHANGES = ("TLS-PSK-", "TLS-ECDHE-PSK-", "TLS-DHE-PSK-")


def psk_ciphers() -> tuple[str, ...]:
    """mbedTLS's PSK cipher suites, in its order of preference."""
    return tuple(name for name in tls.ciphers_available() if name.startswith(PSK_KEY_EXCHANGES))


def peer_name(host: str, port: int) -> str:
    """``host:port`` (``[v6]:port``), as errors and URLs name a peer."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Channel(Protocol):
    """A connected datagram channel to one peer."""

    peer: str
    stats: WireStats

    def send(self, message: bytes) -> None: ...

    def receive(self, deadline: float) -> bytes | None:
        """The next message, or None once ``time.monotonic()`` passes *deadline*."""
        ...

    def close(self) -> None: ...


class UdpChannel:
    """Plain CoAP's channel: a connected UDP socket (opened by :meth:`open`)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.peer = peer_name(host, port)
        self.stats = WireStats()
        self._sock: socket.socket | None = None

    def open(self) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            raise CoapError(f"UDP {self.peer}: cannot reach it ({exc}); check the board's address") from exc
        self._sock = sock

    @property
    def sock(self) -> socket.socket:
        if self._sock is None:
            raise CoapError(f"UDP {self.peer}: the channel is not open (call open() first, or it was closed)")
        return self._sock

    def send(self, message: bytes) -> None:
        self.sock.send(message)
        self.stats.sent(len(message))

    def receive(self, deadline: float) -> bytes | None:
        sock = self.sock
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                continue
            try:
                data = sock.recv(MAX_DATAGRAM)
            except ConnectionRefusedError as exc:  # ICMP port unreachable, reported on the next recv
                raise CoapError(
                    f"UDP {self.peer}: port unreachable (ICMP): nothing listens there; check that the board "
                    "serves this protocol on that port and the address is the board's"
                ) from exc
            self.stats.received(len(data))
            return data
        return None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class DtlsChannel:
    """CoAPS's channel: DTLS 1.2 with a pre-shared key over a :class:`UdpChannel`. :meth:`open`, then
    :meth:`handshake`; :meth:`close` sends close_notify. The key is never part of a message or repr."""

    def __init__(
        self,
        host: str,
        port: int,
        identity: str,
        key: bytes,
        *,
        ciphers: tuple[str, ...] | None = None,
        mtu: int | None = None,
    ) -> None:
        self.udp = UdpChannel(host, port)
        self.peer = self.udp.peer
        self.stats = self.udp.stats
        self.identity = identity
        self._key = key
        self._ciphers = ciphers
        self._mtu = mtu
        self._buffer: tls.TLSWrappedBuffer | None = None
        self._closed = False
        self.handshake_result: Handshake | None = None  # kept after close(), for the measurements

    def open(self) -> None:
        self.udp.open()

    def _describe(self) -> str:
        return f"DTLS {self.peer} (PSK identity {self.identity!r})"

    def handshake(self, timeout: float) -> Handshake:
        """Run the handshake (cookie exchange included: mbedTLS answers a HelloVerifyRequest itself);
        raises :class:`DtlsHandshakeTimeout` on silence past *timeout*, :class:`DtlsHandshakeFailed`
        on an alert."""
        config = tls.DTLSConfiguration(
            pre_shared_key=(self.identity, self._key),
            validate_certificates=False,  # PSK: no certificates to validate
            ciphers=self._ciphers or psk_ciphers(),
            lowest_supported_version=tls.DTLSVersion.DTLSv1_2,
            handshake_timeout_min=1.0,  # RFC 6347's initial retransmission timer
            handshake_timeout_max=max(1.0, timeout),
        )
        buffer = tls.ClientContext(config).wrap_buffers(None)
        if self._mtu:
            buffer.setmtu(self._mtu)
        self._buffer = buffer
        before = self.stats.snapshot()
        started = time.monotonic()
        deadline = started + timeout
        while buffer._handshake_state is not tls.HandshakeStep.HANDSHAKE_OVER:
            try:
                buffer.do_handshake()
            except (tls.WantReadError, tls.WantWriteError):
                self._flush()
                if time.monotonic() >= deadline:
                    raise DtlsHandshakeTimeout(
                        f"{self._describe()}: no handshake within {timeout:.1f} s (stopped at "
                        f"{buffer._handshake_state.name}). A wrong PSK identity or key is usually met by "
                        "silence: check them against the board's (NVS ecowatt/psk_id, ecowatt/psk), that it "
                        f"serves CoAPS on UDP {self.udp.port} and that {self.udp.host} is its address"
                    ) from None
                data = self.udp.receive(min(deadline, time.monotonic() + HANDSHAKE_POLL_S))
                if data is not None:
                    buffer.receive_from_network(data)
            except TLSError as exc:
                self._flush()  # the alert mbedTLS queued, so the peer learns it too
                raise DtlsHandshakeFailed(
                    f"{self._describe()}: handshake failed: {exc}; check the PSK identity and key and that "
                    "the board offers a PSK cipher suite of DTLS 1.2"
                ) from exc
        self._flush()
        self.handshake_result = Handshake(
            duration_s=time.monotonic() - started,
            wire=self.stats.since(before),
            cipher=str(buffer.cipher()),
            version=buffer.negotiated_tls_version().name,
        )
        return self.handshake_result

    @property
    def _established(self) -> tls.TLSWrappedBuffer:
        if self._buffer is None or self.handshake_result is None or self._closed:
            raise CoapError(f"{self._describe()}: no DTLS session (call handshake() first, or it was closed)")
        return self._buffer

    def _flush(self) -> None:
        """Send what mbedTLS queued, one datagram per call (a flight's records may share one)."""
        if self._buffer is None:
            return
        while out := self._buffer.peek_outgoing(MAX_DATAGRAM):
            self.udp.send(out)
            self._buffer.consume_outgoing(len(out))

    def send(self, message: bytes) -> None:
        buffer = self._established
        buffer.write(message)
        self._flush()

    def receive(self, deadline: float) -> bytes | None:
        """The next application-data record; records mbedTLS drops (replayed, tampered, a retransmitted
        handshake flight) are skipped, as the device drops them."""
        buffer = self._established
        while (data := self.udp.receive(deadline)) is not None:
            buffer.receive_from_network(data)
            try:
                return buffer.read(MAX_DATAGRAM)
            except tls.WantReadError:
                self._flush()  # e.g. an answer to the peer's retransmitted Finished
                continue
            except TLSError as exc:  # close_notify or a fatal alert from the peer
                raise CoapError(f"{self._describe()}: the session ended: {exc}; open a new one") from exc
        return None

    def close(self) -> None:
        """Send close_notify (when a session is up) and close the socket (idempotent)."""
        if self._buffer is not None and self.handshake_result is not None and not self._closed:
            try:
                self._buffer.shutdown()
                self._flush()
            except (TLSError, OSError):
                pass  # the peer is gone or the session already ended: nothing left to notify
        self._closed = True
        self.udp.close()
