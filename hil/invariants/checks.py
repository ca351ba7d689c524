"""The invariants, as data: a name, what it guarantees, and the check (a list of violations, empty
when it holds). :func:`check_all` runs those that apply to what a test left behind.

- ``server.never-5xx``: no built-in server answered anything with a 5xx.
- ``server.refusal-recorded``: every refusal (a 4xx a route answered) has its security event.
- ``server.accepted-stored-once``: each accepted upload is stored exactly once (one row per register
  and nonce), and as many uploads are stored as were accepted.
- ``device.nonce-committed-before-send``: the firmware logged the NVS commit of every nonce before
  the line that sends it (needs the profile's ``nonce.committed`` and ``upload.sending`` events).
- ``secrets.not-on-console``: no provisioned key or PSK, in any encoding, on a board's console.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from hil.console.profile import UnknownEventError
from hil.invariants.observed import Observed, ObservedConsole

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
        events = server.state.storage.events()
        if len(events) != len(refusals):
            listed = ", ".join(f"{a.method} {a.path} {a.status}" for a in refusals[-MAX_SHOWN:])
            out.append(f"{server.url}: {len(refusals)} refusals answered ({listed}) but {len(events)} security events")
    return out


def _accepted_stored_once(observed: Observed) -> list[str]:
    out = []
    for server in observed.servers:
        rows = server.state.storage.readings(limit=1_000_000)
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


def _has_servers(observed: Observed) -> bool:
    return bool(observed.servers)


def _has_profiled_consoles(observed: Observed) -> bool:
    return any(_events(c, "nonce.committed", "nonce") is not None for c in observed.consoles)


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
        "device.nonce-committed-before-send",
        "the firmware commits each nonce to NVS before the packet that carries it leaves",
        _committed_before_send,
        _has_profiled_consoles,
    ),
    Invariant(
        "secrets.not-on-console",
        "no provisioned key or PSK appears on a board's console, in any encoding",
        _secrets_not_on_console,
        lambda o: bool(o.consoles) and len(o.secrets) > 0,
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
