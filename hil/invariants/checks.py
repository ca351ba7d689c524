"""The invariants, as data: a name, what it guarantees, and the check (a list of violations, empty
when it holds). :func:`check_all` runs those that apply to what a test left behind.

- ``server.never-5xx``: no built-in server answered anything with a 5xx.
- ``server.refusal-recorded``: every refusal (a 4xx a route answered) has its security event.
- ``server.accepted-stored-once``: each accepted upload is stored exactly once (one row per register
  and nonce), and as many uploads are stored as were accepted.
- ``server.store-agrees-with-capture``: what the test's capture of its built-in server's plain-HTTP
  traffic shows is what the database holds: each upload answered as accepted is stored (and accepted
  only once), none answered only with refusals is (the wire's view, not the server's own answer log).
- ``device.nonce-committed-before-send``: the firmware logged the NVS commit of every nonce before
  the line that sends it (needs the profile's ``nonce.committed`` and ``upload.sending`` events).
- ``device.nonce-never-decreases``: between two flashings (loader sessions, which may re-provision
  NVS on purpose) the nonces a board's log shows never go back: each commit and each send is above
  every nonce before it, a load at boot or a ``status`` line is not below any.
- ``ota.slots-hold-their-images``: after a scenario that updated a board (``ota_board``), its primary
  slot holds an image of the version it last booted; after a confirmed update the secondary holds
  one of the version it ran before, after a failed update it is erased (flash MD5 over the ROM loader).
- ``secrets.not-on-console``: no provisioned key or PSK, in any encoding, on a board's console.
- ``secrets.not-in-artifacts``: none either, raw or in a text form, in what else the test wrote: its
  capture (what went over the network), its evidence attachments and its other log files.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hil.console.console import LOADER_SESSION
from hil.console.profile import UnknownEventError
from hil.flashing import FlashRegion
from hil.invariants.observed import Observed, ObservedConsole, ObservedSlots, SlotImage
from hil.server.storage import ALL

MAX_SHOWN = 3  # violations quoted per invariant


@dataclass(frozen=True)
class Invariant:
    """One property: ``check`` returns its violations (empty: it holds); ``applies`` says whether the
    test left anything it can check."""

    name: str
    guarantees: str
    check: Callable[[Observed], list[str]]
    applies: Callable[[Observed], bool]


@dataclass(frozen=True)
class Verdict:
    """An invariant's result for one test."""

    name: str
    applied: bool
    violations: tuple[str, ...]

    @property
    def holds(self) -> bool:
        return not self.violations

    def describe(self) -> str:
        if not self.applied:
            return f"{self.name}: not applicable"
        if self.holds:
            return f"{self.name}: holds"
        shown = "; ".join(self.violations[:MAX_SHOWN])
        more = f" (+{len(self.violations) - MAX_SHOWN} more)" if len(self.violations) > MAX_SHOWN else ""
        return f"{self.name}: BROKEN — {shown}{more}"


def _never_5xx(observed: Observed) -> list[str]:
    return [
        f"{server.url}: {a.method} {a.path} answered {a.status}"
        for server in observed.servers
        for a in server.state.responses.entries()
        if a.status >= 500
    ]


def _refusal_recorded(observed: Observed) -> list[str]:
    out = []
    for server in observed.servers:
        refusals = [a for a in server.state.responses.entries() if a.routed and 400 <= a.status < 500]
        events = server.state.storage.events(limit=ALL)
        if len(events) != len(refusals):
            listed = ", ".join(f"{a.method} {a.path} {a.status}" for a in refusals[-MAX_SHOWN:])
            out.append(f"{server.url}: {len(refusals)} refusals answered ({listed}) but {len(events)} security events")
    return out


def _accepted_stored_once(observed: Observed) -> list[str]:
    out = []
    for server in observed.servers:
        rows = server.state.storage.readings(limit=ALL)
        twice = [k for k, n in Counter((r["device_id"], r["nonce"], r["register"]) for r in rows).items() if n > 1]
        out += [f"{server.url}: {dev} nonce {nonce} {register} stored more than once" for dev, nonce, register in twice]
        wire = server.state.config.wire
        accepted = [
            a for a in server.state.responses.entries() if wire.is_upload_path(a.path) and 200 <= a.status < 300
        ]
        stored = {(r["device_id"], r["nonce"]) for r in rows}
        if len(stored) != len(accepted):
            out.append(f"{server.url}: {len(accepted)} uploads accepted, {len(stored)} stored")
    return out


def _store_agrees_with_capture(observed: Observed) -> list[str]:
    out = []
    for capture in observed.captures:
        server = capture.server
        stored = {(r["device_id"], r["nonce"]) for r in server.state.storage.readings(limit=ALL)}
        accepted = Counter((u.device_id, u.nonce) for u in capture.uploads if u.accepted)
        refused = {(u.device_id, u.nonce) for u in capture.uploads if not u.accepted} - set(accepted)
        out += [f"{server.url}: the capture shows {dev} nonce {n} accepted {k} times"
                for (dev, n), k in accepted.items() if k > 1]  # fmt: skip
        out += [f"{server.url}: the capture shows {dev} nonce {n} accepted, nothing of it is stored"
                for dev, n in sorted(set(accepted) - stored)]  # fmt: skip
        out += [f"{server.url}: {dev} nonce {n} is stored, but the capture shows it only refused"
                for dev, n in sorted(refused & stored)]  # fmt: skip
    return out


def _events(console: ObservedConsole, name: str, field: str) -> list[tuple[int, str]] | None:
    try:
        pattern = console.profile.event(name)
    except UnknownEventError:
        return None
    return [(i, m.group(field)) for i, line in enumerate(console.lines) if (m := pattern.search(line))]


def _committed_before_send(observed: Observed) -> list[str]:
    out = []
    for console in observed.consoles:
        committed, sending = _events(console, "nonce.committed", "nonce"), _events(console, "upload.sending", "nonce")
        if committed is None or sending is None:
            continue
        for line, nonce in sending:
            if not any(c_line < line and c_nonce == nonce for c_line, c_nonce in committed):
                out.append(
                    f"board {console.board}: nonce {nonce} sent (log line {line + 1}) with no NVS commit before it"
                )
    return out


def _secrets_not_on_console(observed: Observed) -> list[str]:
    out = []
    for console in observed.consoles:
        if not console.log.is_file():
            continue
        found = observed.secrets.find(console.log.read_text(encoding="utf-8", errors="replace"))
        out += [f"board {console.board}: {name} appears in its console log {console.log.name}" for name in found]
    return out


def _secrets_not_in_artifacts(observed: Observed) -> list[str]:
    out = []
    for path in observed.artifacts:
        if path.is_file():
            out += [f"{name} appears in {path.name}" for name in observed.secrets.find_bytes(path.read_bytes())]
    return out


# What each event says about the NVS nonce: a commit takes a new one, a send uses the one committed
# last, a load (at boot) reads the stored one, ``status`` the one in RAM. Per event: the kinds of
# earlier nonce it must exceed, and those it must only reach. A status line only reads (it is no
# bound for later ones): it may come between a commit and its log line, the upload timer runs beside
# the console.
_NONCE_RULES: dict[str, tuple[str | None, frozenset[str], frozenset[str]]] = {
    "nonce.committed": ("committed", frozenset({"committed", "sent", "loaded"}), frozenset()),
    "upload.sending": ("sent", frozenset({"sent", "loaded"}), frozenset({"committed"})),
    "nonce.loaded": ("loaded", frozenset(), frozenset({"committed", "sent", "loaded"})),
    "status": (None, frozenset(), frozenset({"committed", "sent", "loaded"})),
}


def _nonce_history(console: ObservedConsole) -> Iterator[tuple[int, str, re.Match[str] | None]]:
    """``(line, event, match)`` of the nonce events in the log, in order, and ``(line, "loader", None)``
    where a loader session began: the harness's mark (esptool reads the ROM's own ``waiting for
    download``), or that ROM line if the log has it (a board put in download mode by hand)."""
    names = ["rom.download", *_NONCE_RULES]
    events: dict[int, tuple[str, re.Match[str] | None]] = {
        at: ("loader", None) if name == "rom.download" else (name, match)
        for at, name, match in console.profile.scan(console.lines, names)
    }
    events.update({at: ("loader", None) for at, line in enumerate(console.lines) if line == LOADER_SESSION})
    for at in sorted(events):
        yield at, *events[at]


def _nonce_never_decreases(observed: Observed) -> list[str]:
    out = []
    for console in observed.consoles:
        highest: dict[str, tuple[int, int]] = {}  # kind -> (highest nonce since the last flashing, its line)
        for at, name, match in _nonce_history(console):
            if match is None:  # flashed: NVS may be re-provisioned on purpose (replay scenarios roll it back)
                highest = {}
                continue
            nonce = int(match["nonce"])
            kind, exceed, reach = _NONCE_RULES[name]
            offended = [
                (before, line, earlier)
                for earlier, (before, line) in highest.items()
                if (earlier in exceed and nonce <= before) or (earlier in reach and nonce < before)
            ]
            if offended:  # one violation per line: against the highest nonce it goes back from
                before, line, earlier = max(offended)
                out.append(
                    f"board {console.board}: {name} {nonce} (log line {at + 1}) after nonce {before} was "
                    f"{earlier} (line {line + 1}), with no flashing in between"
                )
            if kind is not None and nonce >= highest.get(kind, (-1, 0))[0]:
                highest[kind] = (nonce, at)
    return out


@dataclass(frozen=True)
class _SlotClaim:
    """What one slot must hold after the test: any of ``images`` (``expected`` says which), because ``why``."""

    slot: str
    offset: int
    images: tuple[SlotImage, ...]
    why: str
    expected: str

    def regions(self, others: tuple[SlotImage, ...]) -> list[tuple[SlotImage, FlashRegion]]:
        """The claim's images at its slot, and ``others`` of their sizes: a mismatch then says what is
        there (one flash MD5 per size)."""
        sizes = {len(i.data) for i in self.images}
        shown = [*self.images, *(i for i in others if i not in self.images and len(i.data) in sizes)]
        return [(i, FlashRegion(self.offset, i.data, f"{self.slot} slot: {i.name}")) for i in shown]


_VERSION_EVENTS = ("boot.version", "status")
_OTA_OUTCOMES = ("ota.progress", "ota.failed", "ota.rebooting", "ota.confirmed")


def _slot_claims(slots: ObservedSlots) -> tuple[list[_SlotClaim], list[str]]:
    """What the slots must hold by the test's log, and the versions it booted that no image has.

    The primary holds an image of the version the board last booted (unless a boot found nothing
    since: then it runs nothing to judge by). The last OTA outcome decides the secondary: after a
    confirmed update it holds the image swapped out (the version booted before the update's
    reboot), after a failed one nothing; after a download, a reboot or a revert it is not judged."""
    console, layout = slots.console, slots.layout
    events = list(console.profile.scan(console.lines, [*_VERSION_EVENTS, "boot.no_image", *_OTA_OUTCOMES]))
    versions = [(at, match["version"]) for at, name, match in events if name in _VERSION_EVENTS]
    if not versions or any(name == "boot.no_image" and at > versions[-1][0] for at, name, _ in events):
        return [], []
    at, running = versions[-1]
    of_version = {v: tuple(i for i in slots.images if i.version == v) for _, v in versions}
    if not of_version[running]:
        return [], [f"board {console.board}: booted {running} (log line {at + 1}), a version no index image has"]
    claims = [
        _SlotClaim(
            "primary", layout.primary_slot, of_version[running], f"last booted {running} (line {at + 1})", running
        )
    ]
    outcomes = [(at, name) for at, name, _ in events if name in _OTA_OUTCOMES]
    last_at, last = outcomes[-1] if outcomes else (0, "")
    if last == "ota.failed":
        erased = SlotImage("erased", "", b"\xff" * layout.slot_size)
        why = f"update failed (line {last_at + 1})"
        claims.append(_SlotClaim("secondary", layout.secondary_slot, (erased,), why, "erased"))
    reboots = [r for r, name in outcomes if name == "ota.rebooting"]
    before = [v for v_at, v in versions if reboots and v_at < reboots[-1]]
    if last == "ota.confirmed" and before and of_version[before[-1]]:
        why = f"update from {before[-1]} confirmed (line {last_at + 1})"
        claims.append(_SlotClaim("secondary", layout.secondary_slot, of_version[before[-1]], why, before[-1]))
    return claims, []


def _slots_hold_their_images(observed: Observed) -> list[str]:
    out = []
    for slots in observed.slots:
        claims, unknown = _slot_claims(slots)
        out += unknown
        asked = [(claim, image, region) for claim in claims for image, region in claim.regions(slots.images)]
        held = slots.matches([region for _, _, region in asked]) if asked else []  # one loader session
        for claim in claims:
            there = [image for (c, image, _), same in zip(asked, held, strict=True) if c is claim and same]
            if not set(there) & set(claim.images):
                found = ", ".join(i.name for i in there) or "none of the index images"
                out.append(
                    f"board {slots.console.board}: {claim.why}, but the {claim.slot} slot at {claim.offset:#x} "
                    f"holds {found}, not {'an image of ' if claim.images[0].version else ''}{claim.expected}"
                )
    return out


def _has_servers(observed: Observed) -> bool:
    return bool(observed.servers)


def _has_profiled_consoles(observed: Observed) -> bool:
    return any(_events(c, "nonce.committed", "nonce") is not None for c in observed.consoles)


def _has_nonce_events(observed: Observed) -> bool:
    return any(name in c.profile.events for c in observed.consoles for name in _NONCE_RULES)


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("server.never-5xx", "no built-in server answered anything with a 5xx", _never_5xx, _has_servers),
    Invariant(
        "server.refusal-recorded",
        "every refusal a built-in server answered has its security event",
        _refusal_recorded,
        _has_servers,
    ),
    Invariant(
        "server.accepted-stored-once",
        "each accepted upload is stored exactly once, and only accepted ones",
        _accepted_stored_once,
        _has_servers,
    ),
    Invariant(
        "server.store-agrees-with-capture",
        "every upload the capture shows accepted is stored, once accepted, and none it shows only refused is",
        _store_agrees_with_capture,
        lambda o: bool(o.captures),
    ),
    Invariant(
        "device.nonce-committed-before-send",
        "the firmware commits each nonce to NVS before the packet that carries it leaves",
        _committed_before_send,
        _has_profiled_consoles,
    ),
    Invariant(
        "device.nonce-never-decreases",
        "between flashings a board's nonces never go back: each commit and send above every nonce before it",
        _nonce_never_decreases,
        _has_nonce_events,
    ),
    Invariant(
        "ota.slots-hold-their-images",
        "after an update scenario the primary slot holds the image the board last booted, the secondary "
        "the previous one after a confirmed update and nothing after a failed one",
        _slots_hold_their_images,
        lambda o: bool(o.slots),
    ),
    Invariant(
        "secrets.not-on-console",
        "no provisioned key or PSK appears on a board's console, in any encoding",
        _secrets_not_on_console,
        lambda o: bool(o.consoles) and len(o.secrets) > 0,
    ),
    Invariant(
        "secrets.not-in-artifacts",
        "no provisioned key or PSK, raw or in any text form, in the test's capture, evidence or other logs",
        _secrets_not_in_artifacts,
        lambda o: bool(o.artifacts) and len(o.secrets) > 0,
    ),
)


def check_all(observed: Observed) -> list[Verdict]:
    """Every invariant's verdict for *observed* (not applicable ones included, for the report)."""
    verdicts = []
    for invariant in INVARIANTS:
        applied = invariant.applies(observed)
        verdicts.append(Verdict(invariant.name, applied, tuple(invariant.check(observed)) if applied else ()))
    return verdicts


def describe_invariants() -> str:
    """One line per invariant: its name and what it guarantees."""
    return "\n".join(f"{i.name}: {i.guarantees}" for i in INVARIANTS)
