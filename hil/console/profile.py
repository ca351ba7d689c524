"""Firmware profiles: the regex behind each named console event, as data (TOML).

A profile file has ``[meta]`` (``name``, ``description``, optional ``extends`` = another profile
whose events it inherits), ``[events]`` (``event.name = "regex"``, searched, with named groups
for the event's fields) and optionally ``[inferred]``: events the firmware never prints, concluded
from the ones it does (:mod:`hil.console.inference`). Scenarios wait for events by name, so
supporting another firmware means writing a profile, not touching tests.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hil.console.inference import (
    InferenceError,
    InferenceMatcher,
    InferredEvent,
    check_inferred,
    field_matcher,
    parse_inferred,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (requires-python >= 3.10): tomllib is tomli, adopted into the standard library in 3.11
    import tomli as tomllib

DEFAULT_PROFILE = "ecowatt-idf"
CRASH_EVENT = "crash"
RESET_EVENT = "rom.reset"
# The ROM banner belongs to the chip, not the firmware: used when a profile does not define it.
ROM_RESET_REGEX = r"rst:(?P<code>0x[0-9a-f]+) \((?P<cause>[A-Z_]+)\),boot:(?P<boot>0x[0-9a-f]+) \((?P<mode>[A-Z_]+)"


class ProfileError(ValueError):
    """A profile that cannot be found, parsed, or has an invalid event regex."""


class UnknownEventError(KeyError):
    """An event name the active profile does not define."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class FirmwareProfile:
    """Named events of one firmware's console output."""

    name: str
    description: str = ""
    events: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    source: str = ""
    inferred: Mapping[str, InferredEvent] = field(default_factory=dict)

    def event(self, name: str) -> re.Pattern[str]:
        """The compiled regex of printed event ``name``; raises :class:`UnknownEventError` naming the
        profile (also for an inferred event, which has no regex: use :meth:`matcher`)."""
        try:
            return self.events[name]
        except KeyError:
            if name in self.inferred:
                raise UnknownEventError(
                    f"event {name!r} of firmware profile {self.name!r} is never printed, it is "
                    f"{self.inferred[name].explain()}: match it with profile.matcher({name!r})"
                ) from None
            raise self._unknown(name) from None

    def _unknown(self, name: str) -> UnknownEventError:
        return UnknownEventError(
            f"event {name!r} is not defined by firmware profile {self.name!r} ({self.source}); "
            f"it defines: {', '.join(sorted([*self.events, *self.inferred]))}"
        )

    def fields(self, name: str) -> list[str]:
        """The field names of event ``name`` (an inferred event has those of the event it is seen in)."""
        rule = self.inferred.get(name)
        regex = self.events.get(rule.seen if rule else name)
        if regex is None:
            raise self._unknown(name)
        return sorted(regex.groupindex)

    def describe(self, name: str) -> str:
        """How event ``name`` is recognised: ``/regex/`` or what it is inferred from."""
        rule = self.inferred.get(name)
        return rule.explain() if rule else f"/{self.event(name).pattern}/"

    def matcher(
        self, name: str, fields: Mapping[str, object] | None = None, history: Sequence[str] = ()
    ) -> Callable[[str], re.Match[str] | None]:
        """A matcher of event ``name`` with ``fields`` (compared as strings), to be called with each
        line's text in arrival order. ``history`` (the texts received before, oldest first) matters
        to an inferred event only: it decides whether what it waits for already did not happen."""
        wanted = {k: str(v) for k, v in (fields or {}).items()}
        unknown = sorted(set(wanted) - set(self.fields(name)))
        if unknown:
            raise ValueError(
                f"event {name!r} of firmware profile {self.name!r} has no field(s) "
                f"{unknown}; its fields are {self.fields(name)}"
            )
        rule = self.inferred.get(name)
        if rule is not None:
            return InferenceMatcher(rule, self.events, wanted, history)
        return field_matcher(self.event(name), wanted)

    def scan(self, texts: Iterable[str], names: Sequence[str]) -> Iterator[tuple[int, str, re.Match[str]]]:
        """``(position, event, match)`` for each of ``texts`` where one of ``names`` (printed or
        inferred, the first in ``names`` order wins) matches; names the profile lacks are skipped."""
        matchers = [(n, self.matcher(n)) for n in names if n in self.events or n in self.inferred]
        for at, text in enumerate(texts):
            found = [(n, m) for n, m in ((n, match(text)) for n, match in matchers) if m]
            if found:  # every matcher saw the line (inferred ones keep state); the first one wins
                yield at, found[0][0], found[0][1]

    @property
    def crash(self) -> re.Pattern[str] | None:
        """Regex of a crash line (Guru Meditation, abort, watchdog), or None if undefined."""
        return self.events.get(CRASH_EVENT)

    @property
    def reset_banner(self) -> re.Pattern[str]:
        """Regex of the ROM reset banner (``rst:0x1 (POWERON_RESET),boot:...``)."""
        return self.events.get(RESET_EVENT) or re.compile(ROM_RESET_REGEX)


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped in ``hil/console/profiles``."""
    folder = resources.files("hil.console") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _read(name_or_path: str | Path) -> tuple[dict, str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            return tomllib.loads(path.read_text(encoding="utf-8")), str(path)
        except OSError as exc:
            raise ProfileError(f"cannot read firmware profile {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"firmware profile {path} is not valid TOML: {exc}") from exc
    resource = resources.files("hil.console") / "profiles" / f"{name_or_path}.toml"
    if not resource.is_file():
        raise ProfileError(
            f"unknown firmware profile {name_or_path!r}: built-in profiles are {builtin_profiles()}; "
            "or pass the path of a .toml profile"
        )
    return tomllib.loads(resource.read_text(encoding="utf-8")), f"builtin:{name_or_path}"


def _flatten(table: dict, prefix: str = "") -> dict[str, object]:
    # TOML reads an unquoted ``rom.reset = ...`` as nested tables: both spellings mean one event
    flat: dict[str, object] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE, _seen: tuple[str, ...] = ()) -> FirmwareProfile:
    """Load a built-in profile by name or a profile file by path; ``extends`` is resolved first."""
    data, source = _read(name_or_path)
    meta = data.get("meta", {})
    raw_events = data.get("events", {})
    if not isinstance(raw_events, dict) or not raw_events:
        raise ProfileError(f"firmware profile {source} has no [events] table")
    events: dict[str, re.Pattern[str]] = {}
    inferred: dict[str, InferredEvent] = {}
    parent = meta.get("extends")
    if parent:
        if parent in _seen:
            raise ProfileError(f"firmware profile {source}: circular 'extends' through {parent!r}")
        base = load_profile(parent, (*_seen, str(name_or_path)))
        events.update(base.events)
        inferred.update(base.inferred)
    try:
        own_inferred = parse_inferred(source, data.get("inferred", {}))
    except InferenceError as exc:
        raise ProfileError(str(exc)) from exc
    own_events = _flatten(raw_events)
    both = sorted(set(own_events) & set(own_inferred))
    if both:
        raise ProfileError(f"firmware profile {source}: {both} are both in [events] and [inferred]: keep one")
    for name, regex in own_events.items():
        if not isinstance(regex, str):
            raise ProfileError(f"firmware profile {source}: event {name!r} must be a regex string")
        try:
            events[name] = re.compile(regex)
        except re.error as exc:
            raise ProfileError(f"firmware profile {source}: event {name!r} has an invalid regex: {exc}") from exc
        inferred.pop(name, None)  # a firmware that prints what its parent's infers: the printed line wins
    for name, rule in own_inferred.items():
        events.pop(name, None)
        inferred[name] = rule
    try:
        check_inferred(source, inferred, events)
    except InferenceError as exc:
        raise ProfileError(str(exc)) from exc
    return FirmwareProfile(
        name=str(meta.get("name", name_or_path)),
        description=str(meta.get("description", "")),
        events=events,
        source=source,
        inferred=inferred,
    )
