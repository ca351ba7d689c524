"""Limits print themselves; measurements outside limits fail the test; tables show every row."""

from __future__ import annotations

import pytest

from hil.report.limits import AtLeast, AtMost, Between, Equals
from hil.report.measurements import Measurement


@pytest.mark.parametrize("limit, text, inside, outside", [
    (AtMost(1.0, "s"), "≤ 1.0 s", 1.0, 1.01),
    (AtLeast(-60), "≥ -60", -60, -61),
    (Between(2, 3.5), "2 … 3.5", 2, 3.6),
    (Equals("v2.0.0"), "= 'v2.0.0'", "v2.0.0", "v1.0.0"),
    (Equals(True), "= True", True, 1),
])
def test_limits_print_and_check(limit, text, inside, outside) -> None:
    assert str(limit) == text
    assert limit.check(inside) and not limit.check(outside)


def test_numeric_limits_reject_non_numbers() -> None:
    assert not AtMost(5).check(None)
    assert not AtMost(5).check(float("nan"))
    assert not AtLeast(0).check(True)


def test_limit_in_another_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="limit '≤ 2 s' is in 's' but the measurement is in 'ms'"):
        Measurement("boot", 1500, "ms", AtMost(2, "s"))
    with pytest.raises(ValueError, match="low bound is above high bound"):
        Between(3, 2)


TESTS = '''
import pytest
from hil.report.limits import AtMost, Between, Equals

def test_within(evidence):
    evidence.measure("boot time", 0.8, "s", AtMost(1.0))
    evidence.measure("free heap", 51234, "B")

def test_outside(evidence):
    evidence.measure("latency", 5, "ms", Between(1, 3))
    evidence.measure("version", "1.0.0", limit=Equals("2.0.0"))
    evidence.measure("rssi", -70, "dBm", AtMost(-60))

def test_raises_itself(evidence):
    evidence.measure("retries", 9, limit=AtMost(3))
    raise RuntimeError("own failure")

@pytest.fixture
def late(evidence):
    yield
    evidence.measure("teardown time", 12, "s", AtMost(10))

def test_late_measurement(late):
    pass
'''


def test_measurements_fail_tests_and_fill_tables(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(test_m=TESTS)
    run = run_inner()
    run.result.assert_outcomes(passed=2, failed=2, errors=1)
    # one message listing every failing row, no traceback noise
    run.result.stdout.fnmatch_lines([
        "*2 measurement(s) outside their limits:",
        "*latency = 5 ms, limit 1 … 3 ms",
        "*version = '1.0.0', limit = '2.0.0'",
    ])
    assert "rssi = -70" not in run.result.stdout.str()
    run.result.stdout.fnmatch_lines(["*RuntimeError: own failure*"])
    run.result.stdout.fnmatch_lines(["*teardown time = 12 s, limit ≤ 10 s*"])
    assert "retries = 9" not in run.result.stdout.str()  # its own error wins, no second failure

    table = run.extras_html("test_outside")
    assert "<td>latency</td><td>5</td><td>ms</td><td>1 … 3 ms</td>" in table
    assert table.count('class="hil-fail">FAIL') == 2 and table.count("hil-pass") == 1
    assert "<td>free heap</td><td>51234</td><td>B</td><td></td><td><span class=\"\">—" \
        in run.extras_html("test_within")

    rows = run.json("measurements")["measurements"]
    assert [(r["test"].split("::")[1], r["name"], r["verdict"]) for r in rows] == [
        ("test_within", "boot time", "PASS"), ("test_within", "free heap", "—"),
        ("test_outside", "latency", "FAIL"), ("test_outside", "version", "FAIL"),
        ("test_outside", "rssi", "PASS"),
        ("test_raises_itself", "retries", "FAIL"),
        ("test_late_measurement", "teardown time", "FAIL"),
    ]
    start = run.html_text.index("hil-run-measurements")
    summary = run.html_text[start:run.html_text.index("</table>", start)]
    assert summary.count("<tr>") == 1 + len(rows)
    props = {p.get("name"): p.get("value") for p in run.junit.iter("property")}
    assert props["measurement:boot time"] == "0.8 s (limit ≤ 1.0 s) PASS"
