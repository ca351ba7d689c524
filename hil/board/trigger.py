"""How the harness makes the firmware act: a console command, or the firmware's own timers.

PROTOCOL.md's device contract: a firmware offers the bench console commands (``upload``, ``ota
check``), "or scenarios fall back to the firmware's own timers". A firmware without them (the public
EcoWatt firmware 1.3.4 uploads every 15 s and checks for updates on its own) is driven by waiting:
the harness waits for the next upload the timer makes, one period plus the usual bound. Scenarios
that need an act at a moment of their choosing (a power cut at a checkpoint of an upload they
start, a console query) say so and skip on a timer-driven board.

``--hil-device-trigger auto|console|timer``: ``auto`` is ``console`` for virtual boards (their
firmware always has the bench console) and the wire profile's ``[device] trigger`` for real ones;
``timer`` on a virtual board provisions it without console commands and with short timer periods
(:data:`VIRTUAL_PERIODS`), so the timer path runs in CI.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

TRIGGERS = ("auto", "console", "timer")
# Timer periods a virtual board is provisioned with in timer mode: long enough that a scenario's
# steps after one upload finish before the next, short enough for CI.
VIRTUAL_PERIODS = (4.0, 6.0)  # upload, update check (s)


@dataclass(frozen=True)
class Trigger:
    """``console``: the harness sends the command; ``timer``: it waits up to one period for the firmware."""

    kind: str = "console"
    upload_period_s: float = 0.0
    ota_period_s: float = 0.0

    @property
    def console(self) -> bool:
        """True when the firmware takes console commands."""
        return self.kind == "console"

    def upload_bound(self, bound: float) -> float:
        """How long to wait for an upload the harness asked for: *bound*, plus one period on timers."""
        return bound if self.console else bound + self.upload_period_s

    def describe(self) -> str:
        """``console commands`` / ``timers (upload every 15 s, update check every 60 s)``."""
        if self.console:
            return "console commands"
        return f"timers (upload every {self.upload_period_s:g} s, update check every {self.ota_period_s:g} s)"

    def require_console(self, board_name: str, what: str) -> None:
        """Skip the test when it needs console command *what* and the firmware acts on timers only."""
        if not self.console:
            pytest.skip(
                f"needs the console command `{what}` at a moment the scenario chooses; the firmware of board "
                f"{board_name} acts on its timers only (--hil-device-trigger timer)"
            )


def resolve_trigger(choice: str, *, virtual: bool, profile_trigger: str, periods: tuple[float, float]) -> Trigger:
    """The trigger of one board: *choice* (``auto``/``console``/``timer``) with the wire profile's
    declared trigger and timer *periods* (upload, OTA check); a virtual board in timer mode gets
    :data:`VIRTUAL_PERIODS` (it is provisioned with them)."""
    if choice not in TRIGGERS:
        raise ValueError(f"--hil-device-trigger {choice!r}: expected one of {', '.join(TRIGGERS)}")
    kind = ("console" if virtual else profile_trigger) if choice == "auto" else choice
    if kind == "console":
        return Trigger()
    upload, ota = VIRTUAL_PERIODS if virtual else periods
    if upload <= 0:
        raise ValueError(
            "--hil-device-trigger timer: the wire profile declares no [device] upload_period_s, so the "
            "harness cannot tell how long to wait for the firmware's next upload"
        )
    return Trigger("timer", upload, ota)
