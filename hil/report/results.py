"""Per-test results assembled from phase reports (setup / call / teardown), xdist-safe.

Everything here works from ``TestReport`` objects as the controller receives them, so a run split
over workers tallies exactly like a single process. A test whose teardown report never arrived
(interrupted run) is still listed, with the outcome its phases so far imply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVIDENCE_ATTR = "hil_evidence"  # report attribute the worker fills; xdist serialises it


@dataclass
class TestRecord:
    """What the report knows about one finished (or interrupted) test."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    outcome: str
    stride: tuple[str, ...] = ()
    threat: str | None = None
    measurements: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _outcome(phases: dict[str, Any]) -> str:
    """passed | failed | error | skipped | xfailed | xpassed | interrupted."""
    setup, call, teardown = (phases.get(w) for w in ("setup", "call", "teardown"))
    if setup is not None and setup.failed:
        return "error"
    if call is not None:
        if hasattr(call, "wasxfail"):
            return "xfailed" if call.skipped else ("xpassed" if call.passed else "failed")
        if call.failed or call.skipped:
            return call.outcome
    elif setup is not None and setup.skipped:
        return "xfailed" if hasattr(setup, "wasxfail") else "skipped"
    if teardown is None:
        return "interrupted"
    return "error" if teardown.failed else "passed"


class Ledger:
    """Collects phase reports per test and turns them into ``TestRecord`` s."""

    def __init__(self) -> None:
        self._phases: dict[str, dict[str, Any]] = {}
        self._finished: dict[str, TestRecord] = {}

    def add(self, report: Any) -> None:
        """Take one ``TestReport`` (any phase); a teardown report finishes its test."""
        phases = self._phases.setdefault(report.nodeid, {})
        phases[report.when] = report
        if report.when == "teardown":
            self._finished[report.nodeid] = self._record(report.nodeid, phases)
            del self._phases[report.nodeid]

    def records(self) -> list[TestRecord]:
        """Finished tests in the order they finished, then interrupted ones."""
        pending = [self._record(nodeid, phases) for nodeid, phases in self._phases.items()]
        return list(self._finished.values()) + pending

    @staticmethod
    def _record(nodeid: str, phases: dict[str, Any]) -> TestRecord:
        record = TestRecord(nodeid, _outcome(phases))
        for when in ("setup", "call", "teardown"):  # later phases carry the complete evidence
            data = getattr(phases.get(when), EVIDENCE_ATTR, None) or {}
            if "stride" in data:
                record.stride, record.threat = tuple(data["stride"]), data.get("threat")
            if "measurements" in data:
                record.measurements, record.notes = list(data["measurements"]), list(data["notes"])
        return record
