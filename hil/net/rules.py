"""Rules of the MITM proxy: which HTTP message to touch and what to do to it.

A rule is data: a phase (request or response), a match (method, path regex, response status),
which occurrences (``skip`` the first N matches, then act at most ``limit`` times) and an action:
``pass``, ``drop`` (close the client connection without an answer), ``delay`` (hold it ``delay_ms``),
``corrupt`` (XOR 0xFF into body bytes at ``offsets``; negative offsets count from the end) or
``inject`` (answer with ``response`` instead of the server / instead of the server's answer).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypedDict

from hil.net.http import HttpMessage

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is Python 3.11+

Phase = Literal["request", "response"]
Action = Literal["pass", "drop", "delay", "corrupt", "inject"]
_ACTIONS = ("pass", "drop", "delay", "corrupt", "inject")


class Match(TypedDict, total=False):
    """The match and occurrence fields of a :class:`Rule`, as the class methods take them."""

    method: str | None
    path: str | None
    status: int | None
    skip: int
    limit: int | None


@dataclass(frozen=True)
class Rule:
    """One proxy rule. Build with the class methods (:meth:`drop`, :meth:`delay`, ...)."""

    phase: Phase
    action: Action
    method: str | None = None
    path: str | None = None  # regex searched in the request target
    status: int | None = None  # response phase only
    skip: int = 0
    limit: int | None = None
    delay_ms: int = 0
    offsets: tuple[int, ...] = ()
    response: HttpMessage | None = None

    def __post_init__(self) -> None:
        if self.phase not in ("request", "response"):
            raise ValueError(f"rule phase must be request or response, not {self.phase!r}")
        if self.action not in _ACTIONS:
            raise ValueError(f"rule action must be one of {_ACTIONS}, not {self.action!r}")
        if self.action == "inject" and (self.response is None or not self.response.is_response):
            raise ValueError("an inject rule needs an HTTP response to send (hil.net.http.build_response)")
        if self.action == "corrupt" and not self.offsets:
            raise ValueError("a corrupt rule needs at least one body offset")
        if self.action == "delay" and not 0 < self.delay_ms <= 600_000:
            raise ValueError(f"delay_ms must be in 1..600000, got {self.delay_ms}")
        if self.path is not None:
            re.compile(self.path)

    @classmethod
    def drop(cls, phase: Phase = "request", **match: Unpack[Match]) -> Rule:
        """Close the client connection instead of forwarding (request) or answering (response)."""
        return cls(phase, "drop", **match)

    @classmethod
    def delay(cls, ms: int, phase: Phase = "request", **match: Unpack[Match]) -> Rule:
        """Hold the message *ms* milliseconds before passing it on."""
        return cls(phase, "delay", delay_ms=ms, **match)

    @classmethod
    def corrupt(cls, offsets: tuple[int, ...] | list[int], phase: Phase = "response", **match: Unpack[Match]) -> Rule:
        """Flip (XOR 0xFF) the body bytes at *offsets*; the length stays, so framing stays valid."""
        return cls(phase, "corrupt", offsets=tuple(offsets), **match)

    @classmethod
    def inject(cls, response: HttpMessage, phase: Phase = "request", **match: Unpack[Match]) -> Rule:
        """Answer with *response*: without asking the server (request) or replacing its answer (response)."""
        return cls(phase, "inject", response=response, **match)

    def matches(self, request: HttpMessage, response: HttpMessage | None = None) -> bool:
        """Whether this rule's method/path/status match (occurrence counting is the :class:`RuleSet`'s)."""
        if self.method is not None and request.method != self.method:
            return False
        if self.path is not None and not re.search(self.path, request.target or ""):
            return False
        return self.status is None or (response is not None and response.status == self.status)

    def describe(self) -> str:
        """Short text for the proxy event log."""
        what = {"delay": f"delay {self.delay_ms}ms", "corrupt": f"corrupt {list(self.offsets)}"}.get(
            self.action, self.action
        )
        return f"{self.phase} {what} on {self.method or '*'} {self.path or '*'}"


def corrupt_body(message: HttpMessage, offsets: tuple[int, ...]) -> HttpMessage:
    """*message* with the body bytes at *offsets* XOR 0xFF (offsets outside the body are ignored)."""
    body = bytearray(message.body)
    for off in offsets:
        if -len(body) <= off < len(body):
            body[off] ^= 0xFF
    return message.with_body(bytes(body))


@dataclass
class RuleSet:
    """Ordered rules with per-rule occurrence counters (thread-safe: connections share them)."""

    rules: list[Rule] = field(default_factory=list)
    _seen: dict[int, int] = field(default_factory=dict)
    _applied: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: Rule) -> None:
        """Append a rule (the first rule that matches and is due wins)."""
        with self._lock:
            self.rules.append(rule)

    def clear(self) -> None:
        """Remove every rule and counter (back to plain pass-through)."""
        with self._lock:
            self.rules.clear()
            self._seen.clear()
            self._applied.clear()

    def select(self, phase: Phase, request: HttpMessage, response: HttpMessage | None = None) -> Rule | None:
        """The rule to apply to this message, counting the occurrence for every matching rule."""
        chosen = None
        with self._lock:
            for index, rule in enumerate(self.rules):
                if rule.phase != phase or not rule.matches(request, response):
                    continue
                seen = self._seen.get(index, 0)
                self._seen[index] = seen + 1
                applied = self._applied.get(index, 0)
                due = seen >= rule.skip and (rule.limit is None or applied < rule.limit)
                if due and chosen is None:
                    self._applied[index] = applied + 1
                    chosen = rule
        return chosen
