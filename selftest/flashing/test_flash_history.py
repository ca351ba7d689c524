"""A verdict never depends on what the board held before: the app region covers the whole primary
slot up to its trailer, so an image shorter than the last one (``truncated`` after ``app-v2``,
with or without ``bitflip`` between) is really written, the old tail erased, and refused — not
reported "skipped" while v2's tail still makes it boot (or bitflip's leftovers get it refused)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180

SCENARIO = '''
from hil.board.contract import BOOT_TIMEOUT
from hil.board.flash_app import flash_app
from hil.images.layout import layout_for


def _flash(board, firmware, image):
    report = flash_app(board, firmware, image)
    (app,) = [r for r in report.regions if r.offset == layout_for(firmware.chip).primary_slot]
    return app


def _refused(board):
    board.console.expect_event("boot.refused", BOOT_TIMEOUT, slot="primary", unless=["boot.validated"])


def test_v2_bitflip_truncated(board, firmware):
    _flash(board, firmware, "app-v2")
    board.console.expect_event("boot.version", BOOT_TIMEOUT, version=firmware.get("app-v2").version)
    _flash(board, firmware, "bitflip")
    _refused(board)
    app = _flash(board, firmware, "truncated")
    assert app.action == "written" and app.bytes_written > 0, app
    _refused(board)


def test_v2_then_truncated(board, firmware):
    _flash(board, firmware, "app-v2")
    board.console.expect_event("boot.version", BOOT_TIMEOUT, version=firmware.get("app-v2").version)
    app = _flash(board, firmware, "truncated")
    assert app.action == "written" and app.bytes_written > 0, app
    _refused(board)
'''


def test_shorter_image_is_written_and_refused_whatever_came_before(tmp_path: Path) -> None:
    scenario = tmp_path / "test_history.py"
    scenario.write_text(SCENARIO, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HIL_"))}
    # the repo's pytest.ini and firmware_builds (-c), one process and one fresh virtual board, in file order
    cmd = [sys.executable, "-m", "pytest", str(scenario), "-c", str(ROOT / "pytest.ini"), f"--rootdir={ROOT}",
           "-q", "-n", "0", "--hil-virtual", "-p", "no:cacheprovider",
           f"--hil-report-dir={tmp_path / 'report'}", f"--hil-logs-dir={tmp_path / 'logs'}"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"{result.stdout[-4000:]}{result.stderr[-1000:]}"
    assert "2 passed" in result.stdout.strip().splitlines()[-1], result.stdout[-2000:]
