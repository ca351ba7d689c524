"""Plaintext search over reassembled streams, not single packets.

A secret split across two TCP segments is invisible to a per-packet grep; here every TCP direction
is searched as one reassembled byte string and every UDP datagram as a unit. Hits carry where they
are, never the needle itself, so a search for a key can be reported without leaking the key.
:func:`search_decoded` also undoes the transfer encodings a passive observer can undo without a key
(base64 runs, then zlib), so a payload that is only compressed does not pass for encrypted.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from hil.net.flows import Direction, Flow, FlowKey


@dataclass(frozen=True)
class Hit:
    """One occurrence: the flow, the direction, the offset in that stream (or datagram index)."""

    flow: FlowKey
    direction: Direction
    offset: int
    length: int
    encoding: str = "raw"  # raw | hex | base64: how the needle appeared
    datagram: int | None = None  # index of the UDP datagram within the flow

    def describe(self) -> str:
        """Location only (safe to log even when the needle is a secret)."""
        where = (
            f"datagram {self.datagram} offset {self.offset}" if self.datagram is not None else f"offset {self.offset}"
        )
        return f"{self.flow} [{self.direction}] {where} ({self.length} bytes, {self.encoding})"


def search(
    flows: Iterable[Flow],
    needle: bytes | str,
    *,
    encodings: tuple[str, ...] = ("raw",),
) -> list[Hit]:
    """Every occurrence of *needle* in the reassembled streams of *flows*.

    ``encodings`` also looks for the needle's lowercase/uppercase ``hex`` or ``base64`` forms, the
    usual ways a key leaks into JSON.
    """
    raw = needle.encode("utf-8") if isinstance(needle, str) else bytes(needle)
    if not raw:
        raise ValueError("search needle is empty")
    forms = _forms(raw, encodings)
    hits: list[Hit] = []
    for flow in flows:
        for direction in ("c2s", "s2c"):
            for index, data in _units(flow, direction):
                for encoding, form in forms:
                    hits.extend(
                        Hit(flow.key, direction, off, len(form), encoding, index) for off in _find_all(data, form)
                    )
    return hits


def contains(flows: Iterable[Flow], needle: bytes | str, **kwargs: tuple[str, ...]) -> bool:
    """Whether :func:`search` finds *needle* anywhere."""
    return bool(search(flows, needle, **kwargs))


_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")
MAX_INFLATED = 1 << 20  # bound on what one base64 run may inflate to (a zlib bomb stays cheap)


def search_decoded(flows: Iterable[Flow], needle: bytes | str) -> list[Hit]:
    """Every occurrence of *needle* inside the base64 runs of *flows*' streams once decoded, and
    inflated when they hold a zlib stream (encoding ``base64`` / ``base64+zlib``; the offset is the
    run's). What anyone on the wire reads of a payload that is compressed but not encrypted."""
    raw = needle.encode("utf-8") if isinstance(needle, str) else bytes(needle)
    if not raw:
        raise ValueError("search needle is empty")
    hits: list[Hit] = []
    for flow in flows:
        for direction in ("c2s", "s2c"):
            for index, data in _units(flow, direction):
                for match in _BASE64_RUN.finditer(data):
                    encoding, plain = _decode_run(match.group())
                    if plain is not None and raw in plain:
                        hits.append(
                            Hit(flow.key, direction, match.start(), match.end() - match.start(), encoding, index)
                        )
    return hits


def _decode_run(run: bytes) -> tuple[str, bytes | None]:
    try:
        decoded = base64.b64decode(run + b"=" * (-len(run) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "base64", None
    inflater = zlib.decompressobj()
    try:
        return "base64+zlib", inflater.decompress(decoded, MAX_INFLATED)
    except zlib.error:
        return "base64", decoded


def _units(flow: Flow, direction: Direction) -> list[tuple[int | None, bytes]]:
    if flow.proto == "udp":
        return [(i, d.payload) for i, d in enumerate(flow.datagrams) if d.direction == direction]
    return [(None, flow.stream(direction))]


def _forms(raw: bytes, encodings: tuple[str, ...]) -> list[tuple[str, bytes]]:
    forms: list[tuple[str, bytes]] = []
    for enc in encodings:
        if enc == "raw":
            forms.append(("raw", raw))
        elif enc == "hex":
            forms += [("hex", raw.hex().encode()), ("hex", raw.hex().upper().encode())]
        elif enc == "base64":
            # Trailing '=' padding and the last partial group depend on alignment: search the stable core.
            core = base64.b64encode(raw).rstrip(b"=")
            forms.append(("base64", core[: len(core) - len(core) % 4] or core))
        else:
            raise ValueError(f"unknown search encoding {enc!r}; use raw, hex or base64")
    unique: list[tuple[str, bytes]] = []
    for item in forms:
        if item not in unique:
            unique.append(item)
    return unique


def _find_all(data: bytes, form: bytes) -> list[int]:
    found = []
    pos = data.find(form)
    while pos >= 0:
        found.append(pos)
        pos = data.find(form, pos + 1)
    return found
