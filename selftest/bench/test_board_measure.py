"""A virtual board measuring its own process for mutation testing's test map (hil.sim.measure): with
HIL_SIM_COVERAGE set it records its lines from before its firmware is imported, labels them with the
test the control socket names (the ``mutation_contexts`` plugin finds the board as a child of this
process), and saves one data file when it stops; without the variable the request is refused."""

from __future__ import annotations

import sys
from pathlib import Path

import coverage
import pytest

import hil.sim.firmware.upload
import hil.sim.power
from hil.board.virtual import VirtualBoardSource
from hil.sim.measure import ENV
from hil.sim.power import ControlServer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import mutation_contexts  # noqa: E402


def _line_after(path: str, marker: str) -> int:
    """The number of the line following the one that contains *marker* (1-based)."""
    lines = Path(path).read_text().splitlines()
    return next(i for i, text in enumerate(lines, start=1) if marker in text) + 1


def test_a_measured_board_labels_its_lines_with_the_test_it_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "board.coverage"))
    source = VirtualBoardSource("measured", tmp_path / "board", chip="esp32")
    _, power = source.start()
    try:
        assert power.socket_path in list(mutation_contexts._boards())
        power.request("coverage_context", test="t.py::first|board")
        power.reset()
        power.request("coverage_context", test="t.py::second|board")
        power.status()
    finally:
        source.stop()
    (saved,) = tmp_path.glob("board.coverage.*")  # one file per board process
    data = coverage.CoverageData(basename=str(saved))
    data.read()
    dispatch = data.contexts_by_lineno(hil.sim.power.__file__)
    assert dispatch[_line_after(hil.sim.power.__file__, 'if op == "reset":')] == ["t.py::first|board"]
    assert "t.py::second|board" in dispatch[_line_after(hil.sim.power.__file__, 'if op == "status":')]
    assert "t.py::first|board" not in dispatch[_line_after(hil.sim.power.__file__, 'if op == "status":')]
    firmware = data.contexts_by_lineno(hil.sim.firmware.upload.__file__)
    assert firmware and any("" in contexts for contexts in firmware.values())  # its import was measured


def test_an_unmeasured_board_refuses_to_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    control = ControlServer(board=None, path=tmp_path / "control.sock")  # type: ignore[arg-type]
    reply = control.handle_line(b'{"op": "coverage_context", "test": "t.py::x|board"}')
    assert not reply["ok"] and "not measured" in reply["error"] and ENV in reply["error"]
