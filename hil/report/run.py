"""The report state of one run: environment, results, and the files written at its end.

Lives in ``config.stash`` (one per pytest run; nothing global). On the xdist controller it
receives every report, merges what workers recorded, writes ``stride.json``,
``measurements.json`` and ``environment.json``, and scrubs every written file for secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.report.environment import Environment, SecretRefusedError
from hil.report.results import Ledger, TestRecord
from hil.report.secrets import scrub_file
from hil.report.settings import ReportSettings
from hil.report.stride import StrideMatrix

WORKER_OUTPUT_KEY = "hil_report"


@dataclass
class RunReport:
    """Everything the report of one run needs; filled during the run, finished once."""

    settings: ReportSettings
    environment: Environment = field(default_factory=Environment)
    ledger: Ledger = field(default_factory=Ledger)
    matrix: StrideMatrix = field(default_factory=StrideMatrix)
    records: list[TestRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # reported loudly at the end of the run

    # -- xdist ---------------------------------------------------------------------------------
    def worker_output(self) -> dict[str, Any]:
        """What a worker hands the controller when it goes down (environment and secrets)."""
        return {"environment": self.environment.to_dict(), "secrets": self.environment.secrets.export()}

    def merge_worker(self, output: dict[str, Any]) -> None:
        """Merge a worker's output; records that now match a secret are dropped and noted."""
        self.environment.secrets.merge(output.get("secrets", []))
        for section, rows in output.get("environment", {}).items():
            for name, fields in rows.items():
                try:
                    self.environment.merge({section: {name: fields}})
                except SecretRefusedError as exc:  # another worker registered it as a secret
                    self.problems.append(str(exc))

    # -- end of run ----------------------------------------------------------------------------
    def finish(self) -> None:
        """Tally the results and write the JSON files (call once, before the HTML is written)."""
        self.records = self.ledger.records()
        self.matrix = StrideMatrix()
        for record in self.records:
            self.matrix.add(record.nodeid, record.outcome, record.stride, record.threat)
        try:
            self.settings.report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.problems.append(f"could not create {self.settings.report_dir}: {exc}")
        self._write("stride", self.matrix.to_dict())
        self._write("measurements", {"measurements": self.measurement_rows_json()})
        self._write("environment", self.environment.to_dict())

    def measurement_rows(self) -> list[tuple[str, dict[str, Any]]]:
        """(nodeid, row) for every measurement of the run, in test order."""
        return [(r.nodeid, m) for r in self.records for m in r.measurements]

    def measurement_rows_json(self) -> list[dict[str, Any]]:
        """Measurement rows with their test and its outcome, for measurements.json."""
        outcome = {r.nodeid: r.outcome for r in self.records}
        return [{"test": nodeid, "test_outcome": outcome[nodeid], **row} for nodeid, row in self.measurement_rows()]

    def _write(self, name: str, data: Any) -> None:
        path = self.settings.json_path(name)
        try:
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        except OSError as exc:  # the HTML and JUnit files must still be written
            self.problems.append(f"could not write {path}: {exc}; check the report folder")

    def output_files(self) -> list[Path]:
        """Every file this run's report consists of (for the secret scrub)."""
        files = [self.settings.json_path(n) for n in ("stride", "measurements", "environment")]
        files += [p for p in (self.settings.html_path, self.settings.junit_path) if p]
        return files

    def scrub(self) -> None:
        """Redact registered secrets in every output file; each file with one is a problem."""
        for path in self.output_files():
            found = scrub_file(path, self.environment.secrets)
            if found:
                self.problems.append(
                    f"SECRET MATERIAL ({', '.join(found)}) reached {path} and "
                    "was redacted: find the test or fixture that logs it"
                )
