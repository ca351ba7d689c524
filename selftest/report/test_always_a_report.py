"""A report and JUnit file are written on every run: crashes, interrupts, user-chosen paths."""

from __future__ import annotations

import pytest

TESTS = '''
import pytest

@pytest.mark.stride("T")
def test_first(evidence):
    evidence.note("ran before the interrupt")

@pytest.mark.stride("R")
def test_interrupts():
    raise {stop}

def test_never_runs():
    pass
'''


@pytest.mark.parametrize("stop", ["KeyboardInterrupt", 'pytest.exit.Exception("bench lost power")'])
def test_interrupted_run_still_reports(pytester: pytest.Pytester, run_inner, stop) -> None:
    pytester.makepyfile(test_int=TESTS.format(stop=stop))
    run = run_inner(subprocess=True)
    assert run.result.ret == pytest.ExitCode.INTERRUPTED
    assert "test_first" in str(run.data["tests"])
    assert run.junit.find(".//testcase[@name='test_first']") is not None
    stride = {c["category"]: c for c in run.json("stride")["categories"]}
    assert stride["T"]["counts"]["passed"] == 1
    assert stride["R"]["tests"] == [
        {"nodeid": "test_int.py::test_interrupts", "outcome": "interrupted", "threat": None}]
    assert "test_never_runs" not in run.html_text


def test_setup_crash_is_reported(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(test_crash='''
import pytest

@pytest.fixture
def board():
    raise OSError("rfc2217://127.0.0.1:4000: connection refused")

def test_needs_board(board):
    pass
''')
    run = run_inner()
    run.result.assert_outcomes(errors=1)
    row = run.rows("test_needs_board")[0]
    assert row["result"] == "Error" and "connection refused" in row["log"]
    assert run.junit.find(".//testcase/error") is not None


def test_user_paths_are_respected(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(test_ok="def test_ok(): pass")
    run = run_inner("--html=out/mine.html", "--junitxml=out/mine.xml",
                    "--hil-report-dir=evidence-out")
    run.result.assert_outcomes(passed=1)
    assert (pytester.path / "out/mine.html").is_file() and (pytester.path / "out/mine.xml").is_file()
    assert (pytester.path / "evidence-out/stride.json").is_file()
    assert not (pytester.path / "reports").exists()
    assert "<title id=\"head-title\">hil security report</title>" in \
        (pytester.path / "out/mine.html").read_text()
