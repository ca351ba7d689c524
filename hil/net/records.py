"""TLS and DTLS record-layer parsing: content types, versions, lengths, DTLS epoch and sequence.

Only the record headers (RFC 5246 §6.2, RFC 6347 §4.1, RFC 9147 for the DTLS 1.3 unified header
left as "opaque") and, for plaintext handshake records, the handshake message type are read: enough
to tell from a capture whether application data flowed, which alerts were sent and how a handshake
went, without any key material.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTENT_TYPES: dict[int, str] = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
    25: "tls12_cid",
    26: "ack",
}
VERSIONS: dict[int, str] = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
    0xFEFF: "DTLS 1.0",
    0xFEFD: "DTLS 1.2",
    0xFEFC: "DTLS 1.3",
}
HANDSHAKE_TYPES: dict[int, str] = {
    0: "hello_request",
    1: "client_hello",
    2: "server_hello",
    3: "hello_verify_request",
    4: "new_session_ticket",
    8: "encrypted_extensions",
    11: "certificate",
    12: "server_key_exchange",
    13: "certificate_request",
    14: "server_hello_done",
    15: "certificate_verify",
    16: "client_key_exchange",
    20: "finished",
}
TLS_HEADER = 5
DTLS_HEADER = 13
MAX_RECORD = 2**14 + 2048  # RFC 5246: a TLSCiphertext fragment never exceeds 2^14 + 2048


class RecordParseError(ValueError):
    """Bytes that are not a sequence of TLS/DTLS records."""


@dataclass(frozen=True)
class Record:
    """One TLS or DTLS record. ``epoch``/``seq`` are set for DTLS only; ``handshake_type`` only for a
    handshake record sent before encryption starts (epoch 0 in DTLS, before ChangeCipherSpec in TLS)."""

    content_type: int
    version: int
    length: int
    offset: int
    epoch: int | None = None
    seq: int | None = None
    handshake_type: int | None = None

    @property
    def type_name(self) -> str:
        """``handshake``, ``application_data``... or ``unknown(N)``."""
        return CONTENT_TYPES.get(self.content_type, f"unknown({self.content_type})")

    @property
    def version_name(self) -> str:
        """``TLS 1.2``, ``DTLS 1.2``... or the hex value."""
        return VERSIONS.get(self.version, f"0x{self.version:04x}")

    @property
    def handshake_name(self) -> str | None:
        """``client_hello``... for a plaintext handshake record, else ``None``."""
        if self.handshake_type is None:
            return None
        return HANDSHAKE_TYPES.get(self.handshake_type, f"handshake({self.handshake_type})")

    def describe(self) -> str:
        """One line: type, version, length (and epoch/seq for DTLS)."""
        name = self.handshake_name or self.type_name
        dtls = f" epoch={self.epoch} seq={self.seq}" if self.epoch is not None else ""
        return f"{name} {self.version_name} len={self.length}{dtls}"


def parse_tls(data: bytes, *, strict: bool = True) -> tuple[list[Record], int]:
    """Parse the TLS records of one direction of a reassembled TCP stream.

    Returns the records and the number of trailing bytes of an incomplete last record (a capture
    that stopped mid-record). With ``strict`` a header that is not TLS raises :class:`RecordParseError`;
    otherwise parsing stops there and the remainder counts as trailing.
    """
    records: list[Record] = []
    pos = 0
    encrypted = False
    while len(data) - pos >= TLS_HEADER:
        ctype, version, length = (
            data[pos],
            int.from_bytes(data[pos + 1 : pos + 3], "big"),
            int.from_bytes(data[pos + 3 : pos + 5], "big"),
        )
        problem = _header_problem(ctype, version, length, dtls=False)
        if problem:
            if strict:
                raise RecordParseError(f"not a TLS record at stream offset {pos}: {problem}")
            break
        if pos + TLS_HEADER + length > len(data):
            break
        body = data[pos + TLS_HEADER : pos + TLS_HEADER + length]
        hs = body[0] if ctype == 22 and body and not encrypted else None
        records.append(Record(ctype, version, length, pos, handshake_type=hs))
        encrypted = encrypted or ctype == 20
        pos += TLS_HEADER + length
    return records, len(data) - pos


def parse_dtls(datagram: bytes, *, strict: bool = True) -> list[Record]:
    """Parse the DTLS 1.0/1.2 records packed in one UDP datagram (RFC 6347 allows several)."""
    records: list[Record] = []
    pos = 0
    while pos < len(datagram):
        if len(datagram) - pos < DTLS_HEADER:
            if strict:
                raise RecordParseError(
                    f"{len(datagram) - pos} trailing bytes at datagram offset {pos} "
                    f"are shorter than a DTLS record header"
                )
            break
        ctype = datagram[pos]
        version = int.from_bytes(datagram[pos + 1 : pos + 3], "big")
        epoch = int.from_bytes(datagram[pos + 3 : pos + 5], "big")
        seq = int.from_bytes(datagram[pos + 5 : pos + 11], "big")
        length = int.from_bytes(datagram[pos + 11 : pos + 13], "big")
        problem = _header_problem(ctype, version, length, dtls=True)
        if not problem and pos + DTLS_HEADER + length > len(datagram):
            problem = f"record length {length} runs past the datagram end"
        if problem:
            if strict:
                raise RecordParseError(f"not a DTLS record at datagram offset {pos}: {problem}")
            break
        body = datagram[pos + DTLS_HEADER : pos + DTLS_HEADER + length]
        hs = body[0] if ctype == 22 and epoch == 0 and body else None
        records.append(Record(ctype, version, length, pos, epoch, seq, hs))
        pos += DTLS_HEADER + length
    return records


def looks_like_tls(data: bytes) -> bool:
    """Whether *data* starts with a plausible TLS record header (for classifying unknown flows)."""
    return len(data) >= TLS_HEADER and not _header_problem(
        data[0], int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:5], "big"), dtls=False
    )


def looks_like_dtls(datagram: bytes) -> bool:
    """Whether *datagram* starts with a plausible DTLS record header."""
    return len(datagram) >= DTLS_HEADER and not _header_problem(
        datagram[0], int.from_bytes(datagram[1:3], "big"), int.from_bytes(datagram[11:13], "big"), dtls=True
    )


def type_counts(records: list[Record]) -> dict[str, int]:
    """How many records of each content type (handshake messages named individually)."""
    counts: dict[str, int] = {}
    for rec in records:
        name = rec.handshake_name or rec.type_name
        counts[name] = counts.get(name, 0) + 1
    return counts


def _header_problem(ctype: int, version: int, length: int, *, dtls: bool) -> str:
    if ctype not in CONTENT_TYPES:
        return f"content type {ctype} is not a TLS content type"
    if dtls != (version >> 8 == 0xFE):
        return f"version 0x{version:04x} is not a {'DTLS' if dtls else 'TLS'} version"
    if not dtls and version >> 8 != 0x03:
        return f"version 0x{version:04x} is not a TLS version"
    if length > MAX_RECORD:
        return f"length {length} exceeds the record limit {MAX_RECORD}"
    return ""
