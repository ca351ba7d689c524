"""Power command driver: actions, failures and timeouts name the board and the command."""

from __future__ import annotations

import sys

import pytest

from hil.board import Board, BoardError, BoardSpec, CommandPowerDriver, PowerCommandError


def test_action_placeholder_and_success(tmp_path):
    record = tmp_path / "actions"
    cmd = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'a').write(sys.argv[2] + ' ')\" {record} {{action}}"
    driver = CommandPowerDriver("dut1", cmd)
    driver.off()
    driver.on()
    driver.cycle()
    assert record.read_text().split() == ["off", "on", "cycle"]


def test_cycle_falls_back_to_off_then_on(tmp_path, caplog):
    record = tmp_path / "actions"
    script = (
        "import sys; a = sys.argv[2]; open(sys.argv[1], 'a').write(a + ' '); "
        "sys.exit(0 if a in ('off', 'on') else 'unknown action ' + a)"
    )
    driver = CommandPowerDriver("dut1", f'{sys.executable} -c "{script}" {record} {{action}}', off_hold=0)
    driver.cycle()
    assert record.read_text().split() == ["cycle", "off", "on"]
    assert "dut1: power cycle command" in caplog.text and "off, then on" in caplog.text
    driver.cycle()  # remembered: no second try of 'cycle'
    assert record.read_text().split() == ["cycle", "off", "on", "off", "on"]


def test_failure_names_board_command_and_output():
    driver = CommandPowerDriver("dut1", f"{sys.executable} -c \"import sys; sys.exit('relay not found')\" {{action}}")
    with pytest.raises(PowerCommandError, match=r"dut1: power off command .* exited with 1: relay not found"):
        driver.off()


def test_timeout_and_cycle_only_commands():
    with pytest.raises(PowerCommandError, match="dut2: power cycle command .* did not finish within 0.2 s"):
        CommandPowerDriver("dut2", f"{sys.executable} -c \"import time; time.sleep(5)\"", timeout=0.2).cycle()
    with pytest.raises(PowerCommandError, match="can only cycle power"):
        CommandPowerDriver("dut2", "true").off()
    with pytest.raises(PowerCommandError, match="cannot run power cycle command 'no-such-binary-hil'"):
        CommandPowerDriver("dut2", "no-such-binary-hil").cycle()


def test_board_power_wiring_without_io():
    assert Board(BoardSpec("a", "/dev/x", power_command="true {action}")).power is not None
    board = Board(BoardSpec("b", "/dev/x"))
    assert board.power is None
    with pytest.raises(BoardError, match="board b .* not open"):
        board.console
