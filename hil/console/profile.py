"""Firmware profiles: the regex behind each named console event, as data (TOML).

A profile file has ``[meta]`` (``name``, ``description``, optional ``extends`` = another profile
whose events it inherits) and ``[events]`` (``event.name = "regex"``, searched, with named groups
for the event's fields). Scenarios wait for events by name, so supporting another firmware means
writing a profile, not touching tests.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

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

    def event(self, name: str) -> re.Pattern[str]:
        """The compiled regex of event ``name``; raises :class:`UnknownEventError` naming the profile."""
        try:
            return self.events[name]
        except KeyError:
            raise UnknownEventError(
                f"event {name!r} is not defined by firmware profile {self.name!r} ({self.source}); "
                f"it defines: {', '.join(sorted(self.events))}"
            ) from None

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
    parent = meta.get("extends")
    if parent:
        if parent in _seen:
            raise ProfileError(f"firmware profile {source}: circular 'extends' through {parent!r}")
        events.update(load_profile(parent, (*_seen, str(name_or_path))).events)
    for name, regex in _flatten(raw_events).items():
        if not isinstance(regex, str):
            raise ProfileError(f"firmware profile {source}: event {name!r} must be a regex string")
        try:
            events[name] = re.compile(regex)
        except re.error as exc:
            raise ProfileError(f"firmware profile {source}: event {name!r} has an invalid regex: {exc}") from exc
    return FirmwareProfile(
        name=str(meta.get("name", name_or_path)),
        description=str(meta.get("description", "")),
        events=events,
        source=source,
    )
