"""Assertions that state outcomes, not a format's literal codes: "refused as replay", "never a 5xx".

Each takes the reply and the wire profile that classifies it. A failure is a *finding*: it says what
was expected, what the server actually did (status, outcome, a quote of the body) and, when the
reply looks like another protocol, which option to change. When the profile declares it has no reply
for the expected outcome (``absent``), any deliberate refusal passes and the finding is returned as
a note for the report instead.
"""

from __future__ import annotations

from hil.net.http import HttpMessage
from hil.wire.classifier import mismatch_hint
from hil.wire.outcome import Outcome, Verdict
from hil.wire.profile import WireProfile


class Finding(AssertionError):
    """A scenario's expectation about the server's reply did not hold; the message says what it did."""


def outcome_of(wire: WireProfile, reply: HttpMessage | None) -> Verdict:
    """The classified reply (``None``: no reply at all)."""
    if reply is None:
        return wire.classify(None, b"")
    return wire.classify(reply.status, reply.body)


def expect_outcome(
    wire: WireProfile, reply: HttpMessage | None, *expected: Outcome, what: str, path: str = ""
) -> Verdict:
    """*reply* must be one of *expected*; else :class:`Finding` naming *what* was sent and what came back.

    Outcomes the profile declares absent are replaced by "any refusal" (see the module docstring).
    """
    verdict = outcome_of(wire, reply)
    if verdict.outcome in expected:
        return verdict
    absent = [o for o in expected if not wire.declares(o)]
    if absent and verdict.outcome.refusal:
        return verdict
    raise Finding(_finding(wire, verdict, " or ".join(o.label for o in expected), what, path))


def expect_refused(wire: WireProfile, reply: HttpMessage | None, *, what: str, path: str = "") -> Verdict:
    """*reply* must be a deliberate refusal (any 4xx the profile recognises): never accepted, never a
    5xx, never a reply the profile cannot read."""
    verdict = outcome_of(wire, reply)
    if verdict.outcome.refusal:
        return verdict
    raise Finding(_finding(wire, verdict, "refused", what, path))


def expect_not_accepted(wire: WireProfile, reply: HttpMessage | None, *, what: str, path: str = "") -> Verdict:
    """*reply* must not be an acceptance nor a 5xx (no reply at all, e.g. a dropped connection, passes)."""
    verdict = outcome_of(wire, reply)
    if verdict.outcome not in (Outcome.ACCEPTED, Outcome.SERVER_ERROR):
        return verdict
    raise Finding(_finding(wire, verdict, "not accepted and not a 5xx", what, path))


def _finding(wire: WireProfile, verdict: Verdict, wanted: str, what: str, path: str) -> str:
    message = f"{what}: expected {wanted}; the server answered {verdict.describe()}"
    hint = mismatch_hint(verdict, method=wire.upload_method, path=path or wire.upload_route, profile=wire.name)
    return f"{message}. {hint}" if hint else message
