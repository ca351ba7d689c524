"""Inferred events: a fact the firmware never prints, concluded from lines it does print.

A real bootloader announces what it does, not every check it passed: Espressif-port MCUboot says
``Loading image 0 - slot 0 from flash`` and nothing when the signature verified. A profile's
``[inferred]`` table states such a conclusion as data::

    [inferred."boot.verified"]
    seen = "boot.validated"                              # the printed event that concludes it
    since = ["rom.reset", "boot.mcuboot"]                # the window opens at the last of these
    none_of = [{ event = "boot.refused", slot = "primary" }, "boot.no_image"]

The inferred event happens on a line where ``seen`` matches while none of ``none_of`` has appeared
since the window opened (the last ``since`` line, or the start of the output). Its fields are
``seen``'s. Matching is stateful, so a matcher is fed the lines in arrival order, starting with the
history before the wait began (a refusal printed before the wait still counts).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Condition = tuple[str, tuple[tuple[str, str], ...]]  # event name, required (field, value) pairs


class InferenceError(ValueError):
    """An ``[inferred]`` entry that is malformed or names events the profile does not define."""


def _describe_condition(condition: Condition) -> str:
    name, fields = condition
    return name + "".join(f" {k}={v}" for k, v in fields)


@dataclass(frozen=True)
class InferredEvent:
    """``name`` happens where ``seen`` is printed with none of ``none_of`` since the last ``since``."""

    name: str
    seen: str
    since: tuple[str, ...]
    none_of: tuple[Condition, ...]
    description: str = ""

    def explain(self) -> str:
        """One line saying what the event is inferred from (used in wait errors)."""
        refusals = ", ".join(_describe_condition(c) for c in self.none_of) or "nothing"
        return f"inferred: {self.seen} with none of [{refusals}] since the last {' or '.join(self.since)}"


def parse_inferred(source: str, table: object) -> dict[str, InferredEvent]:
    """The ``[inferred]`` table of profile ``source`` as :class:`InferredEvent` s (not yet checked
    against the events; :func:`check_inferred` does that once ``extends`` is resolved)."""
    if not isinstance(table, dict):
        raise InferenceError(f"firmware profile {source}: [inferred] must be a table of tables")
    out: dict[str, InferredEvent] = {}
    for name, spec in _tables(table):
        where = f"firmware profile {source}: inferred event {name!r}"
        seen, since, none_of = spec.get("seen"), spec.get("since", []), spec.get("none_of", [])
        if not isinstance(seen, str):
            raise InferenceError(f'{where} needs seen = "<event>" (the printed event that concludes it)')
        since = [since] if isinstance(since, str) else since
        if not isinstance(since, list) or not all(isinstance(s, str) for s in since):
            raise InferenceError(f"{where}: since must be an event name or a list of them")
        if not isinstance(none_of, list):
            raise InferenceError(f"{where}: none_of must be a list of event names or {{ event = ..., field = ... }}")
        out[name] = InferredEvent(
            name, seen, tuple(since), tuple(_condition(where, c) for c in none_of), str(spec.get("description", ""))
        )
    return out


def _tables(table: dict, prefix: str = "") -> list[tuple[str, dict]]:
    # ``[inferred.boot.verified]`` (unquoted) nests one table per dot: an entry is a table holding
    # values (seen, since, ...), a table holding only tables is one more level of the name
    found: list[tuple[str, dict]] = []
    for key, value in table.items():
        if not isinstance(value, dict):
            raise InferenceError(f'[inferred] {prefix}{key} = {value!r}: entries are tables ([inferred."name"])')
        if value and all(isinstance(v, dict) for v in value.values()):
            found.extend(_tables(value, f"{prefix}{key}."))
        else:
            found.append((f"{prefix}{key}", value))
    return found


def _condition(where: str, raw: object) -> Condition:
    if isinstance(raw, str):
        return raw, ()
    if isinstance(raw, dict) and isinstance(raw.get("event"), str):
        fields = tuple(sorted((str(k), str(v)) for k, v in raw.items() if k != "event"))
        return raw["event"], fields
    raise InferenceError(f"{where}: none_of entry {raw!r} is neither an event name nor {{ event = ..., ... }}")


def check_inferred(source: str, inferred: Mapping[str, InferredEvent], events: Mapping[str, re.Pattern[str]]) -> None:
    """Every event an inference names is a printed event of the profile, with the fields it compares."""
    for rule in inferred.values():
        where = f"firmware profile {source}: inferred event {rule.name!r}"
        for name, fields in [(rule.seen, ()), *((s, ()) for s in rule.since), *rule.none_of]:
            if name not in events:
                raise InferenceError(f"{where} refers to {name!r}, which [events] does not define")
            unknown = sorted({k for k, _ in fields} - set(events[name].groupindex))
            if unknown:
                raise InferenceError(f"{where}: event {name!r} has no field(s) {unknown}")


class InferenceMatcher:
    """Stateful matcher of one inferred event: call it with each line's text in arrival order."""

    def __init__(
        self,
        rule: InferredEvent,
        events: Mapping[str, re.Pattern[str]],
        wanted: Mapping[str, str],
        history: Sequence[str] = (),
    ) -> None:
        self._seen = field_matcher(events[rule.seen], wanted)
        self._since = [events[name] for name in rule.since]
        self._refusals = [field_matcher(events[name], dict(fields)) for name, fields in rule.none_of]
        self._refused = False
        for text in _current_window(history, self._since):
            self(text)

    def __call__(self, text: str) -> re.Match[str] | None:
        if any(regex.search(text) for regex in self._since):
            self._refused = False  # a new boot: what the previous one printed no longer counts
            return None
        if any(refusal(text) for refusal in self._refusals):
            self._refused = True
            return None
        return None if self._refused else self._seen(text)


def _current_window(history: Sequence[str], since: Sequence[re.Pattern[str]]) -> Sequence[str]:
    """The tail of ``history`` from its last window-opening line (all of it if there is none)."""
    for at in range(len(history) - 1, -1, -1):
        if any(regex.search(history[at]) for regex in since):
            return history[at:]
    return history


def field_matcher(regex: re.Pattern[str], wanted: Mapping[str, str]) -> Callable[[str], re.Match[str] | None]:
    """A matcher of lines ``regex`` finds with each named group equal to ``wanted``'s value."""

    def match(text: str) -> re.Match[str] | None:
        found = regex.search(text)
        return found if found and all(found.group(k) == v for k, v in wanted.items()) else None

    return match
