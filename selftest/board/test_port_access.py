"""A serial device the user may not open: the error names the board, the port, the device's group
and the fix (``usermod -aG <group>``, log in again, or a udev rule)."""

from __future__ import annotations

import grp
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a tty device to another owner")

# root without capabilities: the kernel's ordinary permission checks apply to it, as to any user
NO_CAPABILITIES = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
OPEN_PORT = """
import sys
from hil.board.port_access import PortAccessDenied
from hil.board.transport import open_port
try:
    open_port(sys.argv[1])
except PortAccessDenied as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.fixture
def dialout_tty() -> Iterator[str]:
    """A real tty device (a pty's slave) as a USB-serial device is: nobody:dialout, mode 660."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        os.chown(path, 65534, grp.getgrnam("dialout").gr_gid)
        os.chmod(path, 0o660)
        yield path
    finally:
        os.close(slave)
        os.close(master)


def _run_without_capabilities(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NO_CAPABILITIES, *argv], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_permission_denied_names_the_group_and_the_fix(dialout_tty: str) -> None:
    run = _run_without_capabilities(sys.executable, "-c", OPEN_PORT, dialout_tty)
    assert run.returncode == 3, run.stdout + run.stderr
    text = run.stdout
    assert f"permission denied opening serial port {dialout_tty} (crw-rw----, group dialout)" in text
    assert "is not in group dialout" in text and "`sudo usermod -aG dialout $USER`" in text
    assert "log out and in again" in text and "udev rule" in text


def test_the_board_fixture_names_the_board(dialout_tty: str, pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_uses_board(session_board):\n    pass\n")
    run = _run_without_capabilities(
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        f"--hil-port=dut1={dialout_tty}",
        f"--hil-lock-dir={pytester.path / 'locks'}",
        cwd=pytester.path,
    )
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    assert f"board dut1: permission denied opening serial port {dialout_tty}" in run.stdout, run.stdout
    assert "sudo usermod -aG dialout $USER" in run.stdout
