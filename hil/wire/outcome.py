"""What a server's reply to an upload means, whatever its wire format: the outcomes scenarios state.

A wire profile's classifier (:mod:`hil.wire.classifier`) maps each (status, body) to one of these.
Scenarios assert outcomes ("refused as replay"), never a format's literal status and error code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(str, Enum):
    """One meaning of an upload reply."""

    ACCEPTED = "accepted"
    REPLAY = "replay"
    BAD_MAC = "bad_mac"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    UNKNOWN_DEVICE = "unknown_device"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"  # any 5xx, whatever the profile says: never an acceptable answer
    UNRECOGNISED = "unrecognised"  # a reply the profile has no rule for (often: another protocol)
    NO_REPLY = "no_reply"  # connection refused, reset or timed out

    @property
    def refusal(self) -> bool:
        """True for the outcomes that are a deliberate refusal (a 4xx the profile recognises)."""
        return self not in (Outcome.ACCEPTED, Outcome.SERVER_ERROR, Outcome.UNRECOGNISED, Outcome.NO_REPLY)

    @property
    def label(self) -> str:
        """How a finding says it: ``refused as replay``, ``accepted``, ``a server error (5xx)``."""
        return _LABELS[self]


_LABELS = {
    Outcome.ACCEPTED: "accepted",
    Outcome.REPLAY: "refused as replay",
    Outcome.BAD_MAC: "refused for a bad MAC",
    Outcome.INVALID: "refused as invalid",
    Outcome.TOO_LARGE: "refused as too large",
    Outcome.UNKNOWN_DEVICE: "refused as an unknown device",
    Outcome.RATE_LIMITED: "refused as rate-limited",
    Outcome.SERVER_ERROR: "a server error (5xx)",
    Outcome.UNRECOGNISED: "a reply this wire profile does not recognise",
    Outcome.NO_REPLY: "no reply",
}


@dataclass(frozen=True)
class Verdict:
    """The classified reply: its outcome, the rule that matched, and a short quote of what was said."""

    outcome: Outcome
    status: int | None
    rule: str
    quote: str
    fields: dict[str, object]

    def describe(self) -> str:
        """``HTTP 401 (refused as replay; rule replay): {"success":false,...}``."""
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP reply"
        return f"{status} ({self.outcome.label}; {self.rule}): {self.quote}"
