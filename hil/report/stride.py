"""STRIDE tags of a test and the coverage matrix tallied from test results.

``@pytest.mark.stride("S", "Tampering", threat="forged MAC accepted")``: categories are letters or
full names (case, spaces, '-' and '_' do not matter); several markers (class + function) add up and
the closest ``threat`` wins. The matrix is tallied from results (reports), never from collected
items, so it is right under xdist where only the controller writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CATEGORIES: dict[str, str] = {
    "S": "Spoofing",
    "T": "Tampering",
    "R": "Repudiation",
    "I": "Information disclosure",
    "D": "Denial of service",
    "E": "Elevation of privilege",
}
# Matrix columns; 'error', 'interrupted' and 'xpassed' fold into failed/passed but keep their
# label per test.
COLUMNS: tuple[str, ...] = ("passed", "failed", "skipped", "xfailed")
_COLUMN_OF = {
    "passed": "passed",
    "xpassed": "passed",
    "failed": "failed",
    "error": "failed",
    "interrupted": "failed",
    "skipped": "skipped",
    "xfailed": "xfailed",
}
# Outcomes that are a verdict on the threat: the test's check ran (a failure is a finding, an
# xfail a known or, in a defect proof run, a detected defect). Skips, harness errors and
# interrupted tests checked nothing, so they never make a category covered.
VERDICTS = frozenset({"passed", "xpassed", "failed", "xfailed"})


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().lower())


_BY_NAME = {_key(name): letter for letter, name in CATEGORIES.items()}
_BY_NAME.update({"dos": "D", "eop": "E", "info disclosure": "I"})


class StrideError(ValueError):
    """A ``stride`` marker with a category that is not one of S T R I D E."""


def normalise(category: Any) -> str:
    """Map a letter or full name to its letter; raise StrideError for anything else."""
    if isinstance(category, str):
        if category.strip().upper() in CATEGORIES:
            return category.strip().upper()
        letter = _BY_NAME.get(_key(category))
        if letter:
            return letter
    raise StrideError(
        f"unknown STRIDE category {category!r}: use one of " + ", ".join(f"{k} ({v})" for k, v in CATEGORIES.items())
    )


@dataclass(frozen=True)
class StrideTag:
    """The STRIDE categories of one test, in S-T-R-I-D-E order, and its one-line threat."""

    categories: tuple[str, ...]
    threat: str | None = None

    @classmethod
    def from_markers(cls, markers: Iterable[Any]) -> StrideTag | None:
        """Build from ``stride`` marks (closest first, as ``iter_markers`` yields them)."""
        letters: set[str] = set()
        threat: str | None = None
        seen = False
        for mark in markers:
            seen = True
            unknown = set(mark.kwargs) - {"threat"}
            if unknown:
                raise StrideError(f"stride marker takes only threat=..., not {sorted(unknown)}")
            if not mark.args:
                raise StrideError("stride marker needs at least one category (S T R I D E)")
            letters.update(normalise(arg) for arg in mark.args)
            if threat is None and mark.kwargs.get("threat"):
                threat = str(mark.kwargs["threat"])
        if not seen:
            return None
        return cls(tuple(c for c in CATEGORIES if c in letters), threat)


@dataclass
class StrideRow:
    """One category's tally: counts per column and the tests (nodeid, outcome, threat)."""

    letter: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    tests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        """A category is covered when at least one of its tests reached a verdict (``VERDICTS``)."""
        return any(t["outcome"] in VERDICTS for t in self.tests)

    @property
    def status(self) -> str:
        """covered | no test | skipped only | no verdict (only errors, interruptions, skips)."""
        if self.covered:
            return "covered"
        if not self.tests:
            return "no test"
        if all(t["outcome"] == "skipped" for t in self.tests):
            return "skipped only"
        return "no verdict"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for stride.json."""
        return {
            "category": self.letter,
            "name": CATEGORIES[self.letter],
            "covered": self.covered,
            "status": self.status,
            "counts": dict(self.counts),
            "tests": list(self.tests),
        }


class StrideMatrix:
    """Coverage matrix: rows are the six categories, columns the outcome counts."""

    def __init__(self) -> None:
        self.rows: dict[str, StrideRow] = {c: StrideRow(c) for c in CATEGORIES}

    def add(self, nodeid: str, outcome: str, categories: Iterable[str], threat: str | None = None) -> None:
        """Count one finished test under each of its categories."""
        column = _COLUMN_OF[outcome]
        for letter in categories:
            row = self.rows[letter]
            row.counts[column] += 1
            row.tests.append({"nodeid": nodeid, "outcome": outcome, "threat": threat})

    @property
    def uncovered(self) -> list[str]:
        """Letters of the categories no test reached a verdict on (untagged, or all skipped...)."""
        return [c for c, row in self.rows.items() if not row.covered]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for stride.json."""
        return {
            "columns": list(COLUMNS),
            "uncovered": self.uncovered,
            "categories": [row.to_dict() for row in self.rows.values()],
        }
