"""pytest plugin of the hil evidence report.

Installed as the ``pytest11`` entry point ``hil_report`` (disable with ``-p no:hil_report``); where
it is not installed, load it with ``-p hil.report.pytest_plugin`` — not both, pluggy refuses one
module under two names.

Hooks only; the work is in the modules next to this one. Flow: the ``stride`` marker is checked at
collection; the ``evidence`` fixture records per test; ``makereport`` puts plain evidence data on
each ``TestReport`` (attribute ``hil_evidence`` — xdist serialises it) and pytest-html extras on the
teardown report; the controller tallies reports, writes the JSON files before pytest-html and
junitxml write theirs at session finish, and scrubs all of them for registered secrets afterwards.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from hil.report import html
from hil.report.environment import Environment
from hil.report.evidence import Evidence
from hil.report.measurements import failure_message
from hil.report.results import EVIDENCE_ATTR
from hil.report.run import WORKER_OUTPUT_KEY, RunReport
from hil.report.settings import REPORT_TITLE, add_options, apply_report_defaults
from hil.report.stride import StrideError, StrideTag

RUN_KEY = pytest.StashKey[RunReport]()
STRIDE_KEY = pytest.StashKey[StrideTag | None]()
EVIDENCE_KEY = pytest.StashKey[Evidence]()
FAILED_KEY = pytest.StashKey[bool]()
_FEED_NAME = "hil-report-ledger"


def run_report(config: pytest.Config) -> RunReport:
    """The run's report state (raises KeyError if this plugin is not configured)."""
    return config.stash[RUN_KEY]


def environment_of(config: pytest.Config) -> Environment:
    """The run's environment collector, for fixtures: ``environment_of(request.config)``."""
    return run_report(config).environment


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


# -- configuration -------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the report's options."""
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Marker, report defaults (before pytest-html/junitxml read them), run state."""
    config.addinivalue_line(
        "markers",
        "stride(*categories, threat=None): STRIDE categories (S T R I D E or full "
        "names) this test covers, tallied into the report's coverage matrix",
    )
    report = RunReport(apply_report_defaults(config))
    report.environment.record_default_tools()
    config.stash[RUN_KEY] = report
    if not _is_worker(config):
        config.pluginmanager.register(_LedgerFeed(report), _FEED_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Drop the ledger feed (pytester runs many sessions in one process)."""
    feed = config.pluginmanager.get_plugin(_FEED_NAME)
    if feed is not None:
        config.pluginmanager.unregister(feed)


# -- collection: the stride marker ------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """Parse ``stride`` markers of collected tests; a bad one is a collection error naming it."""
    rep = yield
    if rep.passed:
        problems = []
        for node in rep.result:
            if isinstance(node, pytest.Item):
                try:
                    node.stash[STRIDE_KEY] = StrideTag.from_markers(node.iter_markers("stride"))
                except StrideError as exc:
                    problems.append(f"{node.nodeid}: {exc}")
        if problems:
            rep.outcome, rep.longrepr, rep.result = "failed", "\n".join(problems), []
    return rep


# -- running ---------------------------------------------------------------------------------
@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Iterator[Evidence]:
    """Per-test evidence: ``measure``, ``note``, ``attach_text/file/png``, ``add_log``."""
    report = run_report(request.config)
    ev = Evidence(
        request.node.nodeid, report.settings.evidence_dir, report.settings.html_dir, report.environment.secrets
    )
    request.node.stash[EVIDENCE_KEY] = ev
    yield ev
    failing = ev.take_failures()  # rows recorded after the test body returned
    if failing:
        pytest.fail(failure_message(failing), pytrace=False)


@pytest.fixture(scope="session")
def hil_environment(request: pytest.FixtureRequest) -> Environment:
    """The run's environment collector (boards, firmware, key fingerprints, tools, secrets)."""
    return environment_of(request.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Fail a test whose body returned but left measurements outside their limits."""
    ev = item.stash.get(EVIDENCE_KEY, None)
    body_returned = False
    try:
        result = yield
        body_returned = True
    finally:
        # a test that already failed keeps its own error; its rows still show FAIL
        failing = ev.take_failures() if ev else []
    if body_returned and failing:
        pytest.fail(failure_message(failing), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Attach evidence data to every phase report; extras and JUnit properties at teardown."""
    tag = item.stash.get(STRIDE_KEY, None)
    ev = item.stash.get(EVIDENCE_KEY, None)
    if call.when == "setup" and tag:
        item.user_properties.append(("stride", ",".join(tag.categories)))
    if call.when == "teardown" and ev:
        item.user_properties.extend(ev.junit_properties())
    report = yield
    failed = item.stash.get(FAILED_KEY, False) or report.failed
    item.stash[FAILED_KEY] = failed
    data: dict[str, Any] = {}
    if tag:
        data.update(stride=list(tag.categories), threat=tag.threat)
    if report.when == "teardown" and ev:
        data.update(ev.payload())
        report.extras = list(getattr(report, "extras", [])) + ev.extras(failed=failed)
    setattr(report, EVIDENCE_ATTR, data)
    return report


class _LedgerFeed:
    """Controller side: every test report, from this process or a worker, goes to the ledger."""

    def __init__(self, report: RunReport) -> None:
        self._report = report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record one phase report."""
        self._report.ledger.add(report)


# -- end of run ------------------------------------------------------------------------------
@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: merge what a worker recorded (environment, secrets)."""
    output = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
    if output:
        run_report(node.config).merge_worker(output)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, Any, Any]:
    """Tally and write JSON first; after pytest-html/junitxml wrote, scrub for secrets."""
    config = session.config
    report = run_report(config)
    if _is_worker(config):
        config.workeroutput[WORKER_OUTPUT_KEY] = report.worker_output()  # type: ignore[attr-defined]  # xdist's, on workers
        return (yield)
    report.finish()
    _update_metadata(config, report)
    result = yield
    report.scrub()
    if report.problems:  # keep a worse exit status (interrupted, internal error) if there is one
        status = session.exitstatus
        code = 1 if status in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) else status
        pytest.exit("hil report: " + " | ".join(report.problems), returncode=code)
    return result


def _update_metadata(config: pytest.Config, report: RunReport) -> None:
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:  # pytest-html not installed: nothing renders an environment table
        return
    if metadata_key in config.stash:  # updated in place: pytest-html took the dict at session start
        table = config.stash[metadata_key]
        ours = report.environment.to_metadata()
        if "boards" in ours:  # the environment table's first row
            rest = {k: v for k, v in table.items() if k != "boards"}
            table.clear()
            table["boards"] = ours.pop("boards")
            table.update(rest)
        table.update(ours)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say plainly whether the run used real or virtual boards, and which (under xdist the workers'
    records were merged when they went down)."""
    if _is_worker(config) or RUN_KEY not in config.stash:
        return
    line = run_report(config).environment.boards_summary()
    if line:
        terminalreporter.write_line(line)


# -- pytest-html hooks (optional: the plugin works with -p no:html) ---------------------------
@pytest.hookimpl(optionalhook=True)
def pytest_html_report_title(report: Any) -> None:
    """Title of the HTML report."""
    report.title = REPORT_TITLE


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: Any, cells: list[str]) -> None:
    """Escape the test id cell (pytest-html inserts it as markup)."""
    if len(cells) < 2:  # another plugin removed the row
        return
    test_id = report.nodeid if report.when == "call" else f"{report.nodeid}::{report.when}"
    cells[1] = f'<td class="col-testId">{html.test_id_cell(test_id)}</td>'


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(
    prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
) -> None:
    """STRIDE coverage matrix and the run's measurements table."""
    report = run_report(session.config)
    postfix.append(html.stride_matrix(report.matrix))
    postfix.append(html.run_measurements_table(report.measurement_rows()))
