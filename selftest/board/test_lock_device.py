"""Board locks are keyed by the device, not the spelling; a lock that cannot work says what to do."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil.board.lock import BoardBusy, BoardLock, LockUnavailable
from hil.board.port_identity import resolve_port


@pytest.fixture
def devices(tmp_path: Path) -> dict[str, str]:
    """Two fake devices, one with a by-id link and a private symlink: every spelling of each."""
    dev, by_id = tmp_path / "dev", tmp_path / "by-id"
    dev.mkdir()
    by_id.mkdir()
    (dev / "ttyUSB0").touch()
    (dev / "ttyUSB1").touch()
    (by_id / "usb-Silicon_Labs_CP2102_0001-if00-port0").symlink_to(dev / "ttyUSB0")
    (tmp_path / "my-board").symlink_to(by_id / "usb-Silicon_Labs_CP2102_0001-if00-port0")
    return {
        "by_id_dir": str(by_id),
        "by-id": str(by_id / "usb-Silicon_Labs_CP2102_0001-if00-port0"),
        "path": str(dev / "ttyUSB0"),
        "dotted": f"{dev}/../dev/ttyUSB0",
        "symlink": str(tmp_path / "my-board"),
        "other": str(dev / "ttyUSB1"),
    }


def test_a_device_resolves_to_its_by_id_name(devices: dict[str, str]) -> None:
    for spelling in ("by-id", "path", "dotted", "symlink"):
        assert resolve_port(devices[spelling], devices["by_id_dir"]) == devices["by-id"], spelling
    assert resolve_port(devices["other"], devices["by_id_dir"]) == devices["other"]  # no by-id link: real path


def test_two_spellings_of_one_device_exclude_each_other(devices: dict[str, str], tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    with BoardLock("dut1", devices["by-id"], locks, by_id_dir=devices["by_id_dir"]):
        for spelling in ("path", "dotted", "symlink"):
            with pytest.raises(BoardBusy, match=f"device {devices['by-id']}"):
                BoardLock("dut1-again", devices[spelling], locks, by_id_dir=devices["by_id_dir"]).acquire(timeout=0)
        with BoardLock("dut2", devices["other"], locks, by_id_dir=devices["by_id_dir"]) as other:
            assert other.held


def test_network_ports_resolve_to_address_and_port() -> None:
    assert resolve_port("rfc2217://localhost:4000?ign_set_control") == "rfc2217://127.0.0.1:4000"
    assert resolve_port("socket://LocalHost:4000") == "socket://127.0.0.1:4000"
    assert resolve_port("rfc2217://[::1]:4000") == "rfc2217://[::1]:4000"
    assert resolve_port("loop://") == "loop://"  # each open of loop:// is its own loopback


def test_two_spellings_of_one_rfc2217_port_exclude_each_other(tmp_path: Path) -> None:
    with BoardLock("remote", "rfc2217://localhost:4000?ign_set_control", tmp_path):
        with pytest.raises(BoardBusy, match=r"held by pid .*as rfc2217://localhost:4000\?ign_set_control"):
            BoardLock("remote-again", "rfc2217://127.0.0.1:4000", tmp_path).acquire(timeout=0)
        with BoardLock("next-port", "rfc2217://127.0.0.1:4001", tmp_path) as other:
            assert other.held


def test_lock_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").touch()
    with pytest.raises(LockUnavailable, match=r"cannot create the board lock directory.*--hil-lock-dir=DIR"):
        BoardLock("dut1", "/dev/ttyUSB0", tmp_path / "a-file" / "locks").acquire(timeout=0)


# root without capabilities: the kernel's ordinary permission checks apply to it (as to any user)
NO_CAPABILITIES = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
TAKE_LOCK = """
import sys
from hil.board.lock import BoardLock, LockUnavailable
try:
    BoardLock("dut1", "/dev/ttyUSB0", sys.argv[1]).acquire(timeout=0)
except LockUnavailable as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the lock directory to another user")
def test_lock_directory_not_writable_is_a_clear_error(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o755)
    os.chown(locks, 65534, 65534)  # nobody's: others may read it, not add to it
    run = subprocess.run(
        [*NO_CAPABILITIES, sys.executable, "-c", TAKE_LOCK, str(locks)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 3, run.stdout + run.stderr
    assert f"cannot open lock file {locks}/" in run.stdout and "Permission denied" in run.stdout
    assert f"chmod 1777 {locks}" in run.stdout and "--hil-lock-dir=DIR" in run.stdout


def test_filesystem_without_flock_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_flock(fd: int, operation: int) -> None:  # what flock(2) answers on a filesystem without locks
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    lock = BoardLock("dut1", "rfc2217://127.0.0.1:4000", tmp_path)
    with pytest.raises(LockUnavailable, match=r"does not support file locks.*outlive a crashed run.*--hil-lock-dir"):
        lock.acquire(timeout=0)
    assert not lock.held and not list(tmp_path.glob("*.lock"))  # no soft lock left behind
