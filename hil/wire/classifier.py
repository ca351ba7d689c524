"""A wire profile's response classifier: ordered rules from (status, body) to an :class:`Outcome`.

Rules are data (the profile's ``[[responses]]`` tables): a rule matches when the status is one it
lists and every named JSON field matches (a string is a regular expression searched in the field's
text; a boolean or number must be equal). The first matching rule wins. Two answers need no rule:
any 5xx is :attr:`Outcome.SERVER_ERROR`, and a reply no rule matches is :attr:`Outcome.UNRECOGNISED`
(which :func:`mismatch_hint` turns into "this server speaks another protocol" when it looks like one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hil.wire.outcome import Outcome, Verdict

QUOTE_CHARS = 160


class ProfileError(ValueError):
    """A wire profile file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Rule:
    """One ``[[responses]]`` entry."""

    outcome: Outcome
    statuses: tuple[int, ...]
    fields: tuple[tuple[str, Any], ...] = ()
    name: str = ""

    def matches(self, status: int, doc: Mapping[str, Any] | None) -> bool:
        """True when *status* is listed and every field matches *doc* (a non-JSON body has no fields)."""
        if status not in self.statuses:
            return False
        if not self.fields:
            return True
        if doc is None:
            return False
        return all(_field_matches(doc.get(key), want) for key, want in self.fields)

    def describe(self) -> str:
        """``replay: HTTP 401 with error ~ /replay/i``."""
        fields = ", ".join(f"{k} ~ /{v}/" if isinstance(v, str) else f"{k} = {json.dumps(v)}" for k, v in self.fields)
        statuses = "/".join(str(s) for s in self.statuses)
        return f"{self.outcome.value}: HTTP {statuses}" + (f" with {fields}" if fields else "")


def _field_matches(value: Any, want: Any) -> bool:
    if isinstance(want, str):
        return value is not None and re.search(want, value if isinstance(value, str) else json.dumps(value)) is not None
    return type(value) is type(want) and value == want


@dataclass(frozen=True)
class Classifier:
    """The ordered rules of one profile, and the outcomes it declares it has no reply for."""

    rules: tuple[Rule, ...]
    absent: frozenset[Outcome] = frozenset()

    @classmethod
    def from_data(cls, entries: Iterable[Mapping[str, Any]], absent: Iterable[str], *, source: str) -> Classifier:
        """Build from the profile's ``[[responses]]`` list and ``absent`` names (ProfileError naming *source*)."""
        rules = []
        for index, entry in enumerate(entries):
            where = f"{source}: responses[{index}]"
            outcome = _outcome(entry.get("outcome"), where)
            statuses = entry.get("status")
            statuses = [statuses] if isinstance(statuses, int) else statuses
            if not isinstance(statuses, list) or not statuses or not all(isinstance(s, int) for s in statuses):
                raise ProfileError(f"{where}: status must be an HTTP status or a list of them")
            fields = entry.get("json", {})
            if not isinstance(fields, Mapping):
                raise ProfileError(f"{where}: json must be a table of field = pattern")
            for key, pattern in fields.items():
                if isinstance(pattern, str):
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        raise ProfileError(f"{where}: json.{key} is not a regular expression ({exc})") from None
            rules.append(Rule(outcome, tuple(statuses), tuple(fields.items()), entry.get("name", outcome.value)))
        missing = {_outcome(name, f"{source}: absent") for name in absent}
        overlap = missing & {r.outcome for r in rules}
        if overlap:
            raise ProfileError(f"{source}: {sorted(o.value for o in overlap)} both declared absent and given a rule")
        return cls(tuple(rules), frozenset(missing))

    def classify(self, status: int | None, body: bytes) -> Verdict:
        """The outcome of one reply (*status* None: no reply at all)."""
        quote = body[:QUOTE_CHARS].decode("utf-8", "replace")
        if status is None:
            return Verdict(Outcome.NO_REPLY, None, "no reply", quote, {})
        doc = _json_object(body)
        fields = dict(doc) if doc is not None else {}
        if status >= 500:
            return Verdict(Outcome.SERVER_ERROR, status, "any 5xx", quote, fields)
        for rule in self.rules:
            if rule.matches(status, doc):
                return Verdict(rule.outcome, status, f"rule {rule.name}", quote, fields)
        return Verdict(Outcome.UNRECOGNISED, status, "no rule", quote, fields)

    def declares(self, outcome: Outcome) -> bool:
        """True when the protocol has a reply for *outcome* (a rule), False when it is declared absent."""
        return outcome not in self.absent

    def describe(self) -> list[str]:
        """One line per rule, then the absent outcomes."""
        lines = [rule.describe() for rule in self.rules]
        lines += ["any 5xx: server_error", "anything else: unrecognised"]
        if self.absent:
            lines.append("no reply in this protocol for: " + ", ".join(sorted(o.value for o in self.absent)))
        return lines


def _outcome(name: object, where: str) -> Outcome:
    try:
        outcome = Outcome(name)
    except ValueError:
        names = ", ".join(o.value for o in Outcome if o not in (Outcome.SERVER_ERROR, Outcome.UNRECOGNISED))
        raise ProfileError(f"{where}: outcome {name!r} is not one of {names}") from None
    if outcome in (Outcome.SERVER_ERROR, Outcome.UNRECOGNISED, Outcome.NO_REPLY):
        raise ProfileError(f"{where}: {outcome.value} is decided by the harness, not by a rule")
    return outcome


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def mismatch_hint(verdict: Verdict, *, method: str, path: str, profile: str) -> str:
    """When an unrecognised reply looks like another protocol (an HTML/non-JSON 404/405, or JSON without
    any field the profile's rules read), the sentence that says so and what to do; else ``""``."""
    if verdict.outcome is not Outcome.UNRECOGNISED or verdict.status is None:
        return ""
    if verdict.status in (404, 405) and not verdict.fields:
        kind = "HTML" if "<" in verdict.quote[:40] else "a non-JSON body"
        return (
            f"`{method} {path}` answered {verdict.status} {kind}: this server speaks another protocol than "
            f"the wire profile {profile!r}; choose --hil-wire-profile (see `hil wire list`)"
        )
    return (
        f"`{method} {path}` answered HTTP {verdict.status}, which the wire profile {profile!r} does not "
        "recognise: if the server speaks another protocol choose --hil-wire-profile (see `hil wire list`), "
        "else add a [[responses]] rule for this reply"
    )
