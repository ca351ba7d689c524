"""The reference server's catalogue of named defects (``hil server --defect NAME``).

Same shape as :mod:`hil.sim.defects`: each row is a deliberate, documented deviation that a
security scenario must be shown to fail against. A defect is honoured at the one place it changes
behaviour (grep for its name in ``hil/server``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator


@dataclass(frozen=True)
class Defect:
    """One named server defect: where it lives and what it breaks."""

    name: str
    area: str  # upload | admin
    summary: str


CATALOGUE: tuple[Defect, ...] = (
    Defect("nonce-advanced-before-mac", "upload",
           "the nonce is checked and advanced before the MAC (the seed's order): a forged packet burns nonces"),
    Defect("missing-fields-skip-checks", "upload",
           "a missing or null mac skips the MAC check and a missing or null nonce skips the replay check"),
    Defect("replay-allowed-equal-nonce", "upload",
           "the replay check is nonce >= last instead of nonce > last, so the last packet replays once more"),
    Defect("no-rate-limit", "upload",
           "uploads are never rate limited (no 429)"),
    Defect("malformed-json-500", "upload",
           "a body that is not JSON crashes the handler into HTTP 500 (the public EcoWatt server's bug)"),
    Defect("no-body-limit", "upload",
           "bodies over 16 KiB are read and processed instead of refused with 413"),
)

BY_NAME: dict[str, Defect] = {d.name: d for d in CATALOGUE}


class UnknownServerDefectError(ValueError):
    """A server defect name that is not in the catalogue."""


class ServerDefects:
    """An immutable, catalogue-checked set of active server defects."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._active = frozenset(names)
        unknown = sorted(self._active.difference(BY_NAME))
        if unknown:
            raise UnknownServerDefectError(
                f"unknown server defect(s) {', '.join(unknown)}; `hil server --list-defects` lists them")

    def __contains__(self, name: str) -> bool:
        # A typo at a check site must fail loudly, not read as "defect off".
        if name not in BY_NAME:
            raise UnknownServerDefectError(f"server defect {name!r} checked but not in the catalogue")
        return name in self._active

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._active))

    def __bool__(self) -> bool:
        return bool(self._active)

    def __repr__(self) -> str:
        return f"ServerDefects({sorted(self._active)!r})"


def describe_catalogue() -> str:
    """One line per server defect, for ``hil server --list-defects``."""
    pad = max(map(len, BY_NAME))
    return "\n".join(f"{d.name.ljust(pad)}  [{d.area}] {d.summary}" for d in CATALOGUE)
