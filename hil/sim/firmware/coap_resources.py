"""The device's CoAP resources and who may reach them (PROTOCOL.md "CoAP / CoAPS").

Transport-free: :class:`CoapResources` turns one request datagram into one response datagram
(aiocoap's message codec, RFC 7252 wire format) and says whether it asked for an OTA check. The
plain and the DTLS servers (:mod:`hil.sim.firmware.coap`) both call it, telling it whether the
request came over DTLS; the NVS ``coap_mode`` decides what plain CoAP may reach.

Resources: ``GET /sensor`` → 2.05 JSON ``{"val":<counter>,"temp":<°C>}``; ``GET /light`` → 2.05
``"0"``/``"1"``; ``PUT /light`` ``"0"``/``"1"`` → 2.04 (anything else 4.00); ``POST /ota`` → 2.04
then an OTA check; unknown path 4.04, wrong method 4.05. Over plain CoAP in ``secure-only`` mode the
writes (``PUT /light``, ``POST /ota``) answer 4.01 Unauthorized: they need the DTLS-authenticated peer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiocoap import Message
from aiocoap.error import UnparsableMessage
from aiocoap.numbers import ContentFormat
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from hil.images.nvs_gen import COAP_MODES, DEFAULT_COAP_MODE

SENSOR_BASE_TEMP_C = 24.5  # the reading the sensor model starts from
_WRITES = {("light", Code.PUT), ("ota", Code.POST)}  # what secure-only keeps off plain CoAP
_METHODS = {"sensor": {Code.GET}, "light": {Code.GET, Code.PUT}, "ota": {Code.POST}}


@dataclass(frozen=True)
class CoapReply:
    """The answer to one datagram: the bytes to send (``None``: nothing, e.g. a stray response or
    an unparsable datagram), and what the log line says about it."""

    datagram: bytes | None
    method: str = "-"
    path: str = "-"
    code: str = "-"
    ota_requested: bool = False


def plain_mode(value: str) -> str:
    """The NVS ``coap_mode`` as one of :data:`~hil.images.nvs_gen.COAP_MODES` (unknown → the default,
    the safe choice: writes need DTLS)."""
    return value if value in COAP_MODES else DEFAULT_COAP_MODE


class CoapResources:
    """The device's resource tree and its RAM state (sensor counter, light): both reset at boot."""

    def __init__(self, mode: str, *, writes_over_plain: bool = False) -> None:
        self.mode = plain_mode(mode)
        # the coap-ota-over-plain defect: the secure-only check is missing
        self._writes_over_plain = writes_over_plain or self.mode == "open"
        self.light = "0"
        self.readings = 0

    def handle(self, datagram: bytes, *, secure: bool) -> CoapReply:
        """The reply to one CoAP datagram that arrived over DTLS (``secure``) or plain UDP."""
        try:
            request = Message.decode(datagram)
        except UnparsableMessage:
            return CoapReply(None)
        if not request.code.is_request():
            return CoapReply(None)  # responses, empty ACK/RST: nothing to answer
        path = "/".join(request.opt.uri_path)
        method = str(request.code)
        code, payload, content_format = self._serve(path, request, secure=secure)
        response = Message(code=code, payload=payload)
        if content_format is not None:
            response.opt.content_format = content_format
        response.token = request.token
        if request.mtype is Type.CON:
            response.mtype, response.mid = Type.ACK, request.mid  # piggybacked response
        else:
            response.mtype, response.mid = Type.NON, request.mid ^ 0x8000  # a fresh id of our own
        ok = code in (Code.CONTENT, Code.CHANGED)
        return CoapReply(response.encode(), method, "/" + path, code.dotted, ok and path == "ota")

    def _serve(self, path: str, request: Message, *, secure: bool) -> tuple[Code, bytes, ContentFormat | None]:
        allowed = _METHODS.get(path)
        if allowed is None:
            return Code.NOT_FOUND, b"", None
        if request.code not in allowed:
            return Code.METHOD_NOT_ALLOWED, b"", None
        if not secure and (path, request.code) in _WRITES and not self._writes_over_plain:
            return Code.UNAUTHORIZED, b"use coaps", ContentFormat.TEXT
        if path == "sensor":
            self.readings += 1
            temp = round(SENSOR_BASE_TEMP_C + (self.readings % 10) / 10, 1)
            body = json.dumps({"val": self.readings, "temp": temp}, separators=(",", ":"))
            return Code.CONTENT, body.encode(), ContentFormat.JSON
        if path == "light" and request.code is Code.GET:
            return Code.CONTENT, self.light.encode(), ContentFormat.TEXT
        if path == "light":
            if request.payload not in (b"0", b"1"):
                return Code.BAD_REQUEST, b"payload must be 0 or 1", ContentFormat.TEXT
            self.light = request.payload.decode()
            return Code.CHANGED, b"", None
        return Code.CHANGED, b"", None  # POST /ota: the caller starts the check after replying
