"""The board fixtures flash only what differs, once per test: on a virtual board, scenarios that use
``flashed_board``, ``provisioned_board`` and ``ota_board`` (each twice) and plain ``board`` run in a
subprocess that records every ``Board.flash`` report and every ``Board.reset``. Once the board holds
the firmware, a set-up writes nothing but the test's own NVS partition, and a board that set-up
flashes is not also reset before (flashing ends in a reset of its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180

RECORDER = '''
import json, os
import pytest
from hil.board.board import Board

_flash, _reset = Board.flash, Board.reset
_test = {"id": "-", "flashing": False}


def _note(**event):
    with open(os.environ["HIL_FLASH_RECORD"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"test": _test["id"], **event}) + "\\n")


def flash(self, plan, **kwargs):
    _test["flashing"] = True
    try:
        report = _flash(self, plan, **kwargs)
    finally:
        _test["flashing"] = False
    _note(kind="flash", regions={r.label.split(" ")[0]: r.action for r in report.regions},
          restarted=report.restarted)
    return report


def reset(self):
    _note(kind="reset by flash" if _test["flashing"] else "reset")
    _reset(self)


Board.flash, Board.reset = flash, reset


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _test["id"] = item.name
'''

SCENARIOS = '''
def test_flashed_1(flashed_board):
    pass


def test_flashed_2(flashed_board):
    pass


def test_provisioned_1(provisioned_board):
    pass


def test_provisioned_2(provisioned_board):
    pass


def test_ota_1(ota_board):
    pass


def test_ota_2(ota_board):
    pass


def test_board_only(board):
    pass
'''


def test_set_up_flashes_only_what_differs_and_resets_once(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(RECORDER)
    (tmp_path / "test_scenarios.py").write_text(SCENARIOS)
    record = tmp_path / "record.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}
    env["HIL_FLASH_RECORD"] = str(record)
    cmd = [sys.executable, "-m", "pytest", str(tmp_path / "test_scenarios.py"), "-q", "-p", "no:cacheprovider",
           "-p", "no:randomly", "-n", "0", "--rootdir", str(ROOT), "-c", str(ROOT / "pytest.ini"), "--hil-virtual",
           "--hil-report-dir", str(tmp_path / "report"), "--hil-logs-dir", str(tmp_path / "logs")]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    events: dict[str, list[dict]] = {}
    for line in record.read_text().splitlines():
        event = json.loads(line)
        events.setdefault(event["test"], []).append(event)

    def written(test: str) -> list[str]:
        (flash,) = [e for e in events[test] if e["kind"] == "flash"]  # one flash per set-up
        return sorted(name for name, action in flash["regions"].items() if action == "written")

    for test in ("test_flashed_1", "test_flashed_2", "test_provisioned_1", "test_provisioned_2", "test_ota_1",
                 "test_ota_2"):
        # the flash's own reset into the app (while esptool is connected), and no other before it
        assert [e["kind"] for e in events[test]] == ["flash"], (test, events[test])
        assert events[test][0]["restarted"], (test, events[test])
    assert written("test_flashed_2") == [], events["test_flashed_2"]
    for test in ("test_provisioned_1", "test_provisioned_2", "test_ota_1", "test_ota_2"):
        assert written(test) == ["nvs"], (test, events[test])  # this test's identity and server
    assert [e["kind"] for e in events["test_board_only"]] == ["reset"], events["test_board_only"]
