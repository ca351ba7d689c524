"""Where the report goes, and the pytest-html / JUnit defaults that make a report on every run.

Options and ini keys use the ``hil`` prefix: ``--hil-report-dir`` / ``hil_report_dir`` (default
``reports``). Unless the user names them, ``--html=<dir>/report.html --self-contained-html
--junitxml=<dir>/junit.xml`` are set in ``pytest_configure`` (before pytest-html and junitxml read
them, so this plugin's configure hook runs ``tryfirst``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

DEFAULT_REPORT_DIR = "reports"
REPORT_TITLE = "hil security report"


def add_options(parser: pytest.Parser) -> None:
    """Register ``--hil-report-dir`` and the ``hil_report_dir`` ini key."""
    group = parser.getgroup("hil-report", "hil evidence report")
    group.addoption(
        "--hil-report-dir",
        dest="hil_report_dir",
        default=None,
        metavar="DIR",
        help="folder (relative to rootdir) for report.html, junit.xml, stride/"
        "measurements/environment .json and evidence files (default: ini "
        f"hil_report_dir or {DEFAULT_REPORT_DIR!r})",
    )
    parser.addini("hil_report_dir", default=DEFAULT_REPORT_DIR, help="folder for the hil report and its evidence files")


@dataclass(frozen=True)
class ReportSettings:
    """Resolved, absolute output locations of one run."""

    report_dir: Path
    html_path: Path | None
    junit_path: Path | None

    @property
    def html_dir(self) -> Path:
        """Links in the report are relative to this folder."""
        return self.html_path.parent if self.html_path else self.report_dir

    @property
    def evidence_dir(self) -> Path:
        """Full texts of attachments live here, one sub-folder per test."""
        return self.report_dir / "evidence"

    def json_path(self, name: str) -> Path:
        """Where ``<name>.json`` (stride, measurements, environment) is written."""
        return self.report_dir / f"{name}.json"


def apply_report_defaults(config: pytest.Config) -> ReportSettings:
    """Fill in --html/--self-contained-html/--junitxml when unset; return the resolved settings.

    Must run before pytest-html's and junitxml's ``pytest_configure``.
    """
    # our folder is rootdir-relative like the other hil paths; user-given --html/--junitxml
    # keep pytest-html's and junitxml's meaning (relative to the invocation directory)
    base = config.invocation_params.dir
    report_dir = config.rootpath / (config.getoption("hil_report_dir") or config.getini("hil_report_dir"))
    option = config.option
    if config.pluginmanager.hasplugin("html"):
        if not option.htmlpath:
            option.htmlpath = str(report_dir / "report.html")
        # evidence must open anywhere: images and text extras are embedded, not side files
        option.self_contained_html = True
    if not getattr(option, "xmlpath", None):
        option.xmlpath = str(report_dir / "junit.xml")
    html_path = getattr(option, "htmlpath", None)
    return ReportSettings(
        report_dir=report_dir,
        html_path=(base / html_path) if html_path else None,
        junit_path=base / option.xmlpath,
    )
