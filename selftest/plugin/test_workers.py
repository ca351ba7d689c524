"""``-n auto`` starts one pytest-xdist worker per board the run can use (hil.plugin.workers)."""

from __future__ import annotations

import pytest

from hil.plugin.workers import usable_cores

TRIVIAL = "def test_a():\n    pass\n\ndef test_b():\n    pass\n"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(TRIVIAL)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "auto", *args)


def test_one_worker_per_bench_board(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--hil-port", "a=rfc2217://127.0.0.1:9", "--hil-port", "b=rfc2217://127.0.0.1:10",
                  "--hil-port", "c=rfc2217://127.0.0.1:11")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*created: 3/3 workers*"])


def test_one_bench_board_runs_without_workers(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--hil-port", "a=rfc2217://127.0.0.1:9")
    result.assert_outcomes(passed=2)
    assert "created:" not in result.stdout.str(), result.stdout.str()


def test_virtual_boards_one_worker_per_core(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--hil-virtual")
    result.assert_outcomes(passed=2)
    cores = usable_cores()
    if cores > 1:
        result.stdout.fnmatch_lines([f"*created: {cores}/{cores} workers*"])
    else:
        assert "created:" not in result.stdout.str()


def test_explicit_worker_count_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TRIVIAL)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "auto", "-n", "0", "--hil-virtual")
    result.assert_outcomes(passed=2)
    assert "created:" not in result.stdout.str()
