"""DtlsProbe: a DTLS 1.2 PSK client that keeps every datagram it sends, for the attacks a scenario
stages at the record layer — replaying or tampering with an application record, flooding ClientHellos
from many source ports, re-sending a harvested cookie from other sources.

It is python-mbedtls (the device's own stack) over memory buffers, so the records are exactly what a
real client sends; only the datagrams' fate is the scenario's. For ordinary requests use
:class:`hil.coap.client.CoapClient`.
"""

from __future__ import annotations

import socket

from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type
from mbedtls.tls import (
    ClientContext,
    DTLSConfiguration,
    DTLSVersion,
    HandshakeStep,
    HelloVerifyRequest,
    TLSWrappedBuffer,
    WantReadError,
    WantWriteError,
)

from hil.coap.endpoint import COAPS_PORT

PROBE_TIMEOUT_S = 2.0  # one datagram's wait: a wrong PSK or a dropped record is silence
HANDSHAKE_RECORD = 22  # DTLS content type of a handshake record (HelloVerifyRequest, ServerHello)


class DtlsProbe:
    """One client socket to ``host``:``port``; ``datagrams`` holds every datagram it sent. Use as a
    context manager or call :meth:`close`; the constructor opens the socket (a probe is single-use)."""

    def __init__(
        self, host: str, identity: str, key: bytes, port: int = COAPS_PORT, timeout: float = PROBE_TIMEOUT_S
    ) -> None:
        conf = DTLSConfiguration(
            pre_shared_key=(identity, key),
            validate_certificates=False,
            lowest_supported_version=DTLSVersion.DTLSv1_2,
            highest_supported_version=DTLSVersion.DTLSv1_2,
        )
        self.host, self.port = host, port
        self.buffer: TLSWrappedBuffer = ClientContext(conf).wrap_buffers(None)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.datagrams: list[bytes] = []

    def __enter__(self) -> DtlsProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (no close_notify: a probe leaves as an attacker would)."""
        self.sock.close()

    @property
    def source(self) -> str:
        """This probe's ip:port, as the device logs its peers."""
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def _flush(self) -> None:
        while chunk := self.buffer.peek_outgoing(4096):
            self.buffer.consume_outgoing(len(chunk))
            self.datagrams.append(chunk)
            self.sock.send(chunk)

    def handshake(self) -> None:
        """Run the whole handshake (cookie exchange included); ``TimeoutError`` if the device goes silent."""
        while self.buffer._handshake_state is not HandshakeStep.HANDSHAKE_OVER:
            try:
                self.buffer.do_handshake()
            except WantWriteError:
                self._flush()
            except (WantReadError, HelloVerifyRequest):
                self._flush()
                self.buffer.receive_from_network(self.sock.recv(4096))
        self._flush()

    def client_hello(self) -> bytes:
        """Run the handshake up to the next ClientHello (the first, or the one answering a
        HelloVerifyRequest fed in with :meth:`feed`), send it, wait for nothing; its datagram."""
        while True:
            try:
                self.buffer.do_handshake()
            except WantWriteError:
                self._flush()
            except WantReadError:
                break
        self._flush()
        return self.datagrams[-1]

    def receive(self) -> bytes | None:
        """The next datagram from the device within the timeout, or None (silence)."""
        try:
            return self.sock.recv(4096)
        except (TimeoutError, ConnectionRefusedError):
            return None

    def feed(self, datagram: bytes) -> None:
        """Give the DTLS state machine a datagram received by :meth:`receive`."""
        self.buffer.receive_from_network(datagram)

    def get(self, path: str, mid: int = 1) -> bytes:
        """Send ``GET /path`` (confirmable) as one application record; that record's datagram."""
        request = Message(code=Code.GET, uri_path=(path,))
        request.mtype, request.mid, request.token = Type.CON, mid, b"\x01"
        self.buffer.write(request.encode())
        self._flush()
        return self.datagrams[-1]

    def response(self) -> Message | None:
        """The next CoAP response within the timeout, or None (silence, or a record that did not decrypt)."""
        data = self.receive()
        if data is None:
            return None
        self.buffer.receive_from_network(data)
        try:
            return Message.decode(self.buffer.read(4096))
        except WantReadError:
            return None
