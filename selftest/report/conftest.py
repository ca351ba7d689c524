"""Helpers for the report self-tests: run an inner pytest session and read what it wrote."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from importlib import metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest



def pytest_configure(config: pytest.Config) -> None:
    """Load pytester. ``pytest_plugins`` in a non-root conftest is an error when the whole
    ``selftest/`` folder runs, so the root conftest should list "pytester"; until it does, load it
    here (a no-op once it is loaded)."""
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")



def _plugin_name() -> str:
    """``-p`` name of the report plugin: its pytest11 entry point when installed as one (loading
    the module under its module name too would register it twice and abort pytest)."""
    for entry in metadata.entry_points(group="pytest11"):
        if entry.value == "hil.report.pytest_plugin":
            return entry.name
    return "hil.report.pytest_plugin"


PLUGIN = ("-p", _plugin_name())


@dataclass
class InnerRun:
    """An inner session's outcome and its report files."""

    result: pytest.RunResult
    reports: Path

    @property
    def html_text(self) -> str:
        return (self.reports / "report.html").read_text(encoding="utf-8")

    @property
    def data(self) -> dict[str, Any]:
        """The JSON blob pytest-html renders rows from."""
        blob = re.search(r'data-jsonblob="(.*?)"></div>', self.html_text, re.S)
        assert blob, "report.html has no data blob"
        return json.loads(html.unescape(blob.group(1)))

    def rows(self, nodeid_part: str) -> list[dict[str, Any]]:
        """Result rows of the tests whose nodeid contains ``nodeid_part``."""
        found = [r for k, rows in self.data["tests"].items() if nodeid_part in k for r in rows]
        assert found, f"no row for {nodeid_part!r} in {list(self.data['tests'])}"
        return found

    def extras_html(self, nodeid_part: str) -> str:
        return "".join(e["content"] for r in self.rows(nodeid_part) for e in r["extras"]
                       if e["format_type"] == "html")

    def json(self, name: str) -> Any:
        return json.loads((self.reports / f"{name}.json").read_text(encoding="utf-8"))

    @property
    def junit(self) -> ET.Element:
        return ET.parse(self.reports / "junit.xml").getroot()


@pytest.fixture
def run_inner(pytester: pytest.Pytester):
    """Run the inner session in-process (``subprocess=True`` for a separate interpreter)."""

    def run(*args: str, subprocess: bool = False) -> InnerRun:
        runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest
        result = runner(*PLUGIN, "-p", "no:cacheprovider", "-p", "no:benchmark",
                        "-p", "no:hil", "-p", "no:hypothesispytest", *args)
        return InnerRun(result, pytester.path / "reports")

    return run
