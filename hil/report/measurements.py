"""One measured figure of a test: value, unit, optional limit, verdict.

Semantics (documented once, here): ``evidence.measure`` always records the row. A row whose value
is outside its limit does not raise on the spot; when the test body returns, the test fails with one
message listing every failing measurement (rows recorded later, in fixture teardown, fail the
teardown instead). Rows travel to the xdist controller as plain dicts (``to_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hil.report.limits import Limit

PASS = "PASS"
FAIL = "FAIL"
NO_LIMIT = "—"


def _plain(value: Any) -> Any:
    """A JSON/execnet friendly version of ``value`` (numbers, strings, bools, None stay)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclass(frozen=True)
class Measurement:
    """A named value with its unit and the limit it is judged against."""

    name: str
    value: Any
    unit: str = ""
    limit: Limit | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a measurement needs a non-empty name")
        if self.limit is not None:
            self.limit.describe(self.unit)  # refuses a limit in another unit, now, not at render

    @property
    def passed(self) -> bool | None:
        """True/False against the limit; None when there is no limit to judge by."""
        return None if self.limit is None else self.limit.check(self.value)

    @property
    def verdict(self) -> str:
        """'PASS', 'FAIL' or '—' (no limit)."""
        return {True: PASS, False: FAIL, None: NO_LIMIT}[self.passed]

    @property
    def limit_text(self) -> str:
        """The limit as printed in the report ('' without a limit)."""
        return "" if self.limit is None else self.limit.describe(self.unit)

    def failure_line(self) -> str:
        """One line for the failure message: name, value, unit and the limit missed."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} = {self.value!r}{unit}, limit {self.limit_text}"

    def to_dict(self) -> dict[str, Any]:
        """The row as plain data (for xdist, JSON and the HTML tables)."""
        return {
            "name": self.name,
            "value": _plain(self.value),
            "unit": self.unit,
            "limit": self.limit_text or None,
            "passed": self.passed,
            "verdict": self.verdict,
        }


def failure_message(failing: list[Measurement]) -> str:
    """The message a test fails with when measurements are outside their limits."""
    lines = [f"{len(failing)} measurement(s) outside their limits:"]
    lines += [f"  {m.failure_line()}" for m in failing]
    return "\n".join(lines)
