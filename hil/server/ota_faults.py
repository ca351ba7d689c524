"""What the OTA endpoints do with the admin API's faults (``POST /api/admin/faults {"name","params"}``).

| name | params | effect |
|---|---|---|
| corrupt_chunk | chunk? | the middle byte of the chunk is inverted (CBC: the plaintext no longer hashes) |
| truncate_chunk | chunk?, bytes? | a complete 200 whose body is only the first ``bytes`` (default half) |
| drop_connection | chunk?, times=1 | headers promise the whole chunk, half is sent, the TCP connection is shut |
| delay_chunk | chunk?, ms | the answer is held ``ms`` milliseconds |
| bad_hash | — | the manifest's sha256_hash is another digest |
| bad_signature | — | the manifest's signature has its first byte inverted |
| wrong_signing_key | — | the manifest is signed with a key the device does not trust |
| offer_version | version | the check offers that package even when it is not newer |
| relabel_version | version, label | package ``version`` offered and served as ``label`` (image and signature kept) |
| claim_size | bytes | the offer claims a ``bytes``-byte image, its other sizes and ``total_chunks`` to match |

``chunk`` absent means every chunk. A fault whose params are malformed is ignored and logged; so are
names the OTA endpoints do not know (other blueprints may use them). ``times`` is consumed atomically
in storage, so exactly that many downloads are dropped however many run concurrently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("hil.server.ota")

CHUNK_FAULTS = ("corrupt_chunk", "truncate_chunk", "drop_connection", "delay_chunk")
MANIFEST_FAULTS = ("bad_hash", "bad_signature", "wrong_signing_key")
CHECK_FAULTS = ("offer_version", "relabel_version")
SIZE_FAULTS = ("claim_size",)
RELABEL_FAULTS = ("relabel_version",)
MAX_LABEL = 64  # a label longer than any version only ties up the log
MAX_DELAY_MS = 120_000  # past the device's request timeout already; longer only ties up a thread


@dataclass(frozen=True)
class Fault:
    """One active fault row as the OTA endpoints read it."""

    id: int
    name: str
    params: dict[str, Any]


def _is_int(value: object, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _params_ok(fault: Fault) -> bool:
    p = fault.params
    chunk_ok = "chunk" not in p or _is_int(p["chunk"])
    checks: dict[str, Callable[[], bool]] = {
        "corrupt_chunk": lambda: chunk_ok,
        "truncate_chunk": lambda: chunk_ok and ("bytes" not in p or _is_int(p["bytes"])),
        "drop_connection": lambda: chunk_ok and ("times" not in p or _is_int(p["times"])),
        "delay_chunk": lambda: (
            chunk_ok
            and isinstance(p.get("ms"), (int, float))
            and not isinstance(p["ms"], bool)
            and 0 <= p["ms"] <= MAX_DELAY_MS
        ),
        "offer_version": lambda: isinstance(p.get("version"), str),
        "claim_size": lambda: _is_int(p.get("bytes"), 1),
        "relabel_version": lambda: (
            isinstance(p.get("version"), str) and isinstance(p.get("label"), str) and 0 < len(p["label"]) <= MAX_LABEL
        ),
    }
    return checks.get(fault.name, lambda: True)()


def known_faults(rows: Iterable[dict[str, Any]], names: tuple[str, ...]) -> list[Fault]:
    """The rows called one of ``names`` whose params are well formed (the others are logged)."""
    out = []
    for row in rows:
        fault = Fault(row["id"], row["name"], row["params"])
        if fault.name not in names:
            continue
        if _params_ok(fault):
            out.append(fault)
        else:
            log.warning(
                "ignoring OTA fault %s with malformed params %s (see hil.server.ota_faults)",
                fault.name,
                sorted(fault.params),
            )
    return out


def for_chunk(faults: Iterable[Fault], n: int) -> list[Fault]:
    """The chunk faults that apply to chunk ``n``."""
    return [f for f in faults if f.params.get("chunk", n) == n]


def corrupt(data: bytes) -> bytes:
    """``data`` with its middle byte inverted (empty data stays empty)."""
    if not data:
        return data
    at = len(data) // 2
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def truncate(data: bytes, params: dict[str, Any]) -> bytes:
    """The first ``params["bytes"]`` bytes (default half) of ``data``, always shorter than ``data``."""
    keep = params.get("bytes", len(data) // 2)
    return data[: min(keep, max(len(data) - 1, 0))]


def other_digest(sha256_hex: str) -> str:
    """A valid-looking SHA-256 that is not ``sha256_hex`` (its last nibble changed)."""
    last = "0" if sha256_hex[-1] != "0" else "1"
    return sha256_hex[:-1] + last


def flip_signature(signature_hex: str) -> str:
    """The signature with its first byte inverted (still 256 bytes of hex)."""
    first = int(signature_hex[:2], 16) ^ 0xFF
    return f"{first:02x}{signature_hex[2:]}"
