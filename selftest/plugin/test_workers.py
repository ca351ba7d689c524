"""``-n auto`` starts one pytest-xdist worker per board the run can use, a larger ``-n`` is refused,
and each worker takes its own board (hil.plugin.workers)."""

from __future__ import annotations

import socket

import pytest

from hil.board.spec import BoardSpec
from hil.plugin.workers import NoBoardForWorker, board_for_worker, usable_cores

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


SESSION_BOARD_TESTS = """
import os

import pytest


@pytest.mark.parametrize("n", range(6))
def test_board(session_board, worker_id, n):
    with open(os.environ["BOARDS_SEEN"], "a") as seen:
        seen.write(f"{worker_id} {session_board.spec.port}\\n")
"""


def test_more_workers_than_boards_is_refused_at_start(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SESSION_BOARD_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--hil-port=dut1=loop://", "--hil-lock-timeout=2",
        f"--hil-lock-dir={pytester.path / 'locks'}",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([
        "*-n 2 asks for 2 workers, but the run has 1 real board(s): dut1 (loop://)*"
        "Use -n auto (one worker per board) or -n 1*"
    ])
    assert "created:" not in result.stdout.str()  # refused before any worker started


def test_each_worker_takes_its_own_board(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # two real endpoints: the kernel completes their connections from the listen backlog, no accept needed
    with socket.create_server(("127.0.0.1", 0)) as one, socket.create_server(("127.0.0.1", 0)) as two:
        ports = [f"socket://127.0.0.1:{s.getsockname()[1]}" for s in (one, two)]
        seen = pytester.path / "seen.txt"
        monkeypatch.setenv("BOARDS_SEEN", str(seen))
        pytester.makepyfile(SESSION_BOARD_TESTS)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-n", "2", f"--hil-port=a={ports[0]}", f"--hil-port=b={ports[1]}",
            "--hil-lock-timeout=2", f"--hil-lock-dir={pytester.path / 'locks'}",
        )
    result.assert_outcomes(passed=6)
    taken = {tuple(line.split()) for line in seen.read_text().splitlines()}
    assert taken == {("gw0", ports[0]), ("gw1", ports[1])}, taken


def test_two_names_of_one_device_are_refused_for_two_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SESSION_BOARD_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--hil-port=a=rfc2217://localhost:4000",
        "--hil-port=b=rfc2217://127.0.0.1:4000?ign_set_control",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["*boards a (rfc2217://localhost:4000) and b (*) are one device, "
                                 "rfc2217://127.0.0.1:4000*"])


def test_a_worker_beyond_the_boards_is_told_why() -> None:
    boards = [BoardSpec("dut1", "/dev/ttyUSB0")]
    assert board_for_worker(boards, "gw0", 0) is boards[0]
    with pytest.raises(NoBoardForWorker, match=r"worker gw1 has no board.*1 board\(s\) \(dut1\).*-n 1"):
        board_for_worker(boards, "gw1", 1)
