"""Never silently virtual: ``--hil-require-hardware`` refuses virtual boards at session start, and
every run that used boards says in its terminal summary (and the report's first environment row)
whether they were real or virtual."""

from __future__ import annotations

import html
import json
import re

import pytest

from hil.report.environment import Environment

BOARD_TEST = "def test_uses_board(board):\n    assert board.name\n"


@pytest.fixture
def no_usb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing on USB, even on a bench machine (USB detection asks pyserial's comports)."""
    import serial.tools.list_ports

    monkeypatch.setattr(serial.tools.list_ports, "comports", list)


def test_require_hardware_without_board_is_a_usage_error(pytester: pytest.Pytester, no_usb: None) -> None:
    pytester.makepyfile(BOARD_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "--hil-require-hardware")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--hil-require-hardware: no real board, and virtual boards are refused*"
            "--hil-port / ini hil_port (none given)*--hil-boards / ini hil_boards (none given)*"
            "303a:1001 (esp-usb-jtag), 10c4:ea60 (cp210x)*none is plugged in*"
            "Plug a board in*--hil-port URL*USB_BRIDGES*"
        ]
    )
    assert "virtual-main" not in result.stdout.str()  # no virtual board was started


def test_require_hardware_with_virtual_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BOARD_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "--hil-require-hardware", "--hil-virtual")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hil-virtual and --hil-require-hardware contradict each other*"])


def test_require_hardware_accepts_a_configured_port(pytester: pytest.Pytester, no_usb: None) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    pytester.makeini("[pytest]\nhil_require_hardware = true\n")  # the ini key works as the flag does
    result = pytester.runpytest("-p", "no:cacheprovider", "--hil-port", "bench-1=rfc2217://127.0.0.1:9")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "workers, board",
    [((), "virtual-main"), (("-n", "2", "-p", "no:benchmark"), r"virtual-gw\d")],
    ids=["single", "xdist"],
)
def test_virtual_board_run_says_so(pytester: pytest.Pytester, workers: tuple[str, ...], board: str) -> None:
    pytester.makepyfile(BOARD_TEST)  # under xdist the controller names the boards its workers used
    result = pytester.runpytest("-p", "no:cacheprovider", "--hil-virtual", *workers)
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([rf"hil boards: virtual \u2014 {board} \(esp32, MAC [0-9a-f:]{{17}}\)$"])
    report = (pytester.path / "reports" / "report.html").read_text(encoding="utf-8")
    blob = re.search(r'data-jsonblob="(.*?)"></div>', report, re.S)
    assert blob, "report.html has no data blob"
    environment = json.loads(html.unescape(blob.group(1)))["environment"]
    assert next(iter(environment.items())) == ("boards", "virtual")


def test_summary_line_and_first_row() -> None:
    env = Environment()
    assert env.boards_summary() is None and "boards" not in env.to_metadata()
    env.record_board("bench-1", "esp32c6", "40:4c:ca:00:00:02", "/dev/ttyUSB0", virtual=False)
    env.record_board("bench-1", "esp32c6", "40:4c:ca:00:00:02", "/dev/ttyUSB0")  # re-recorded after a flash
    assert env.boards_summary() == "hil boards: REAL \u2014 bench-1 (esp32c6, MAC 40:4c:ca:00:00:02)"
    assert next(iter(env.to_metadata())) == "boards" and env.to_metadata()["boards"] == "real"
    merged = Environment()
    merged.merge(env.to_dict())  # what a worker hands the controller
    merged.record_board("virtual-gw1", "esp32", "24:0a:c4:00:00:01", "rfc2217://127.0.0.1:4000", virtual=True)
    assert merged.boards_summary() == (
        "hil boards: REAL and virtual \u2014 bench-1 (esp32c6, MAC 40:4c:ca:00:00:02), "
        "virtual-gw1 (esp32, MAC 24:0a:c4:00:00:01)"
    )
