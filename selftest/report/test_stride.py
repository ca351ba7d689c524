"""STRIDE marker: normalisation, collection errors, coverage matrix (single process and xdist)."""

from __future__ import annotations

import pytest

from hil.report.stride import StrideError, StrideMatrix, normalise

TESTS = '''
import pytest

@pytest.mark.stride("S", "Tampering", threat="forged MAC <b>accepted</b>")
def test_pass(): pass

@pytest.mark.stride("information_disclosure")
def test_fail(): assert False

@pytest.mark.stride("s")
@pytest.mark.skip(reason="no sniffer")
def test_skip(): pass

@pytest.mark.stride("Denial of service")
@pytest.mark.xfail(reason="known", strict=True)
def test_xfail(): assert False

@pytest.fixture
def broken(): raise RuntimeError("setup crashed")

@pytest.mark.stride("D")
def test_error(broken): pass

def test_untagged(): pass
'''


def _counts(stride: dict, letter: str) -> dict:
    return next(c for c in stride["categories"] if c["category"] == letter)["counts"]


def test_normalise_letters_and_names() -> None:
    assert normalise(" t ") == "T"
    assert normalise("Elevation-of-Privilege") == "E"
    assert normalise("denial_of_service") == "D"
    with pytest.raises(StrideError, match="unknown STRIDE category 'X'"):
        normalise("X")


def test_matrix_shows_uncovered_categories() -> None:
    matrix = StrideMatrix()
    matrix.add("t::a", "error", ["S"])
    matrix.add("t::b", "failed", ["T"])
    matrix.add("t::c", "skipped", ["R", "I"])
    matrix.add("t::d", "xfailed", ["I"])
    assert matrix.rows["S"].counts["failed"] == 1
    assert matrix.uncovered == ["S", "R", "D", "E"]  # an error or a skip checked nothing
    assert [row.status for row in matrix.rows.values()] == [
        "no verdict",
        "covered",
        "skipped only",
        "covered",
        "no test",
        "no test",
    ]


def test_category_whose_tests_all_skipped_is_not_covered(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(test_skips='''
import pytest

@pytest.mark.stride("S", "T")
def test_pass(): pass

@pytest.mark.stride("R")
@pytest.mark.skip(reason="no sniffer")
def test_skip_one(): pass

@pytest.mark.stride("Repudiation", "S")
def test_skip_two(): pytest.skip("no power control")

@pytest.fixture
def broken(): raise RuntimeError("setup crashed")

@pytest.mark.stride("I", "D", "E")
def test_error(broken): pass
''')
    run = run_inner()
    run.result.assert_outcomes(passed=1, skipped=2, errors=1)
    stride = run.json("stride")
    assert _counts(stride, "R") == {"passed": 0, "failed": 0, "skipped": 2, "xfailed": 0}
    assert stride["uncovered"] == ["R", "I", "D", "E"]
    status = {c["category"]: (c["covered"], c["status"]) for c in stride["categories"]}
    assert status["S"] == (True, "covered") and status["R"] == (False, "skipped only")
    assert status["I"] == (False, "no verdict")
    summary = run.html_text
    assert "Uncovered STRIDE categories: Repudiation (skipped only), Information disclosure (no verdict)" in summary
    assert "R — Repudiation (skipped only)" in summary


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["single", "xdist"])
def test_matrix_tallies_outcomes(pytester: pytest.Pytester, run_inner, workers) -> None:
    pytester.makepyfile(test_threats=TESTS)
    run = run_inner(*workers)
    run.result.assert_outcomes(passed=2, failed=1, skipped=1, xfailed=1, errors=1)
    stride = run.json("stride")
    assert _counts(stride, "S") == {"passed": 1, "failed": 0, "skipped": 1, "xfailed": 0}
    assert _counts(stride, "T") == {"passed": 1, "failed": 0, "skipped": 0, "xfailed": 0}
    assert _counts(stride, "I") == {"passed": 0, "failed": 1, "skipped": 0, "xfailed": 0}
    assert _counts(stride, "D") == {"passed": 0, "failed": 1, "skipped": 0, "xfailed": 1}
    assert stride["uncovered"] == ["R", "E"]
    tests_d = next(c for c in stride["categories"] if c["category"] == "D")["tests"]
    assert {t["outcome"] for t in tests_d} == {"error", "xfailed"}
    summary = run.html_text
    assert "Uncovered STRIDE categories: Repudiation, Elevation of privilege" in summary
    assert 'href="#test_threats.py::test_pass"' in summary
    assert "forged MAC &lt;b&gt;accepted&lt;/b&gt;" in summary  # threat escaped
    props = {p.get("name"): p.get("value") for p in run.junit.iter("property")}
    assert props["stride"] in {"S,T", "I", "S", "D"}


def test_unknown_category_is_a_collection_error(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.stride("S", "Q")
def test_typo(): pass

def test_fine(): pass
''')
    run = run_inner()
    assert run.result.ret == pytest.ExitCode.INTERRUPTED
    run.result.stdout.fnmatch_lines(["*test_bad.py::test_typo: unknown STRIDE category 'Q'*"])
    assert (run.reports / "report.html").exists() and (run.reports / "junit.xml").exists()
