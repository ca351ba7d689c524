"""A CoAP client for scenarios (RFC 7252) over a :mod:`hil.coap.channel`: aiocoap's message codec,
confirmable requests retransmitted per RFC 7252 section 4.8 but never past the caller's timeout,
piggybacked and separate responses, and the bytes each exchange put on the wire."""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiocoap import Message
from aiocoap.error import UnparsableMessage
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from hil.coap.channel import Channel
from hil.coap.errors import CoapError, CoapReset, CoapTimeout
from hil.coap.wire import Handshake, WireStats

DEFAULT_TIMEOUT = 10.0  # a request's whole bound, retransmissions included
METHODS = {"GET": Code.GET, "POST": Code.POST, "PUT": Code.PUT, "DELETE": Code.DELETE}


@dataclass(frozen=True)
class Transmission:
    """RFC 7252 section 4.8's transmission parameters (its defaults)."""

    ack_timeout: float = 2.0
    ack_random_factor: float = 1.5
    max_retransmit: int = 4

    def initial_timeout(self, rng: random.Random) -> float:
        """The first retransmission timeout: random in [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR]."""
        return rng.uniform(self.ack_timeout, self.ack_timeout * self.ack_random_factor)


@dataclass(frozen=True)
class CoapResponse:
    """A response, with what its exchange cost: ``code`` is dotted (``"2.05"``); ``wire`` counts the
    request's datagrams (retransmissions included), the response's and any ACK of a separate response."""

    code: str
    code_name: str
    payload: bytes
    content_format: int | None
    elapsed_s: float
    retransmissions: int
    wire: WireStats

    @property
    def ok(self) -> bool:
        """A 2.xx response."""
        return self.code.startswith("2.")

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.payload)


def _message(code: Code, mtype: Type, mid: int, token: bytes, path: str, payload: bytes) -> Message:
    message = Message(code=code, uri_path=tuple(part for part in path.strip("/").split("/") if part), payload=payload)
    message.mtype, message.mid, message.token = mtype, mid, token  # managed here, not by an aiocoap context
    return message


class CoapClient:
    """Requests to one peer over an open *channel* (see :meth:`hil.coap.endpoint.CoapEndpoint.connect`).
    ``scheme`` names the peer in errors. A context manager; :meth:`close` closes the channel (for
    CoAPS: sends close_notify)."""

    def __init__(
        self,
        channel: Channel,
        *,
        scheme: str = "coap",
        transmission: Transmission | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.channel = channel
        self.scheme = scheme
        self.transmission = transmission or Transmission()
        self._rng = rng or random.Random(os.urandom(8))
        self._mid = self._rng.randrange(0x10000)

    @property
    def stats(self) -> WireStats:
        """Everything this client's channel sent and received (a DTLS handshake included)."""
        return self.channel.stats

    @property
    def handshake(self) -> Handshake | None:
        """The DTLS handshake of a CoAPS client; None for plain CoAP."""
        return getattr(self.channel, "handshake_result", None)

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.channel.peer}/{path.lstrip('/')}"

    def get(self, path: str, **kwargs: Any) -> CoapResponse:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, payload: bytes | str, **kwargs: Any) -> CoapResponse:
        return self.request("PUT", path, payload, **kwargs)

    def post(self, path: str, payload: bytes | str = b"", **kwargs: Any) -> CoapResponse:
        return self.request("POST", path, payload, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        payload: bytes | str = b"",
        *,
        confirmable: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> CoapResponse:
        """Send *method* *path* and wait for its response at most *timeout* seconds (then
        :class:`CoapTimeout`); a confirmable request is retransmitted until ACKed, per RFC 7252."""
        if method.upper() not in METHODS:
            raise ValueError(f"{method!r}: not a CoAP method ({', '.join(METHODS)})")
        body = payload.encode() if isinstance(payload, str) else payload
        self._mid = (self._mid + 1) % 0x10000
        mid, token = self._mid, self._rng.randbytes(4)
        mtype = Type.CON if confirmable else Type.NON
        raw = _message(METHODS[method.upper()], mtype, mid, token, path, body).encode()
        before = self.stats.snapshot()
        started = time.monotonic()
        deadline = started + timeout
        backoff = self.transmission.initial_timeout(self._rng)
        resend_at = started + backoff if confirmable else deadline
        retransmissions = 0
        acked = not confirmable
        self.channel.send(raw)
        while True:
            data = self.channel.receive(deadline if acked else min(deadline, resend_at))
            now = time.monotonic()
            if data is None:
                if now >= deadline or (retransmissions == self.transmission.max_retransmit and now >= resend_at):
                    raise CoapTimeout(
                        f"{method.upper()} {self.url(path)}: no response within {min(timeout, now - started):.1f} s "
                        f"({retransmissions} retransmissions); check that the board is up and serves "
                        f"{self.scheme.upper()} at {self.channel.peer}"
                    )
                if not acked and now >= resend_at:
                    retransmissions += 1
                    backoff *= 2
                    resend_at = now + backoff
                    self.channel.send(raw)
                continue
            try:
                reply = Message.decode(data)
            except UnparsableMessage:
                continue  # not CoAP (or truncated): ignored, as RFC 7252 section 4.2 lets a client do
            if reply.mid == mid and reply.mtype is Type.RST:
                raise CoapReset(f"{method.upper()} {self.url(path)}: the peer reset the request (RST)")
            if reply.mid == mid and reply.mtype is Type.ACK:
                acked = True
                if reply.code is Code.EMPTY:
                    continue  # a separate response follows
            elif reply.token != token or not reply.code.is_response():
                continue  # a late duplicate of an earlier exchange
            elif reply.mtype is Type.CON:
                ack = Message(code=Code.EMPTY)
                ack.mtype, ack.mid, ack.token = Type.ACK, reply.mid, b""
                self.channel.send(ack.encode())
            if reply.token != token:
                continue
            return CoapResponse(
                code=reply.code.dotted,
                code_name=reply.code.name,
                payload=bytes(reply.payload),
                content_format=None if reply.opt.content_format is None else int(reply.opt.content_format),
                elapsed_s=time.monotonic() - started,
                retransmissions=retransmissions,
                wire=self.stats.since(before),
            )

    def close(self) -> None:
        """Close the channel (CoAPS: close_notify first). Idempotent."""
        self.channel.close()

    def __enter__(self) -> CoapClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = ["DEFAULT_TIMEOUT", "CoapClient", "CoapError", "CoapResponse", "Transmission"]
