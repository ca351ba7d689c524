"""Cross-process board lock: a second process waits, times out naming the holder, then gets it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.board import BoardBusy, BoardLock

HOLDER = Path(__file__).with_name("lock_holder.py")


@pytest.fixture
def holder(tmp_path):
    port = "rfc2217://127.0.0.1:4000"
    proc = subprocess.Popen([sys.executable, str(HOLDER), port, str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc, port, tmp_path
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(10)


def test_busy_board_times_out_naming_the_holder(holder):
    proc, port, lock_dir = holder
    lock = BoardLock("dut0", port, lock_dir, owner="me")
    t0 = time.monotonic()
    with pytest.raises(BoardBusy) as info:
        lock.acquire(timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    text = str(info.value)
    assert f"pid {proc.pid} on {socket.gethostname()}" in text
    assert "test_other_process[holder]" in text and port in text and "waited 0.3 s" in text


def test_lock_is_granted_when_the_holder_releases(holder):
    proc, port, lock_dir = holder
    proc.stdin.close()  # the holder releases and exits
    lock = BoardLock("dut0", port, lock_dir, owner="me")
    lock.acquire(timeout=10)
    try:
        assert lock.holder()["pid"] == os.getpid()
        lock.set_owner("test_two")
        assert lock.holder()["owner"] == "test_two"
    finally:
        lock.release()
    assert lock.holder() is None and not lock.held


def test_lock_of_a_killed_holder_is_taken_at_once(holder):
    proc, port, lock_dir = holder
    proc.kill()  # SIGKILL: no release, the holder record stays behind
    proc.wait(10)
    lock = BoardLock("dut0", port, lock_dir, owner="me")
    assert lock.holder()["pid"] == proc.pid
    assert f"pid {proc.pid}, which it names, has exited" in lock.describe_holder()
    lock.acquire(timeout=0)  # one try: the OS dropped the dead holder's lock
    try:
        assert lock.holder()["pid"] == os.getpid()
    finally:
        lock.release()


def test_stale_record_is_not_named_as_the_holder(tmp_path):
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(exited.stdout)
    with BoardLock("a", "/dev/ttyUSB0", tmp_path) as first:  # holds the lock, then its record goes stale
        record = {"pid": dead_pid, "host": socket.gethostname(), "owner": "gone", "since": 0}
        first.holder_path.write_text(json.dumps(record))
        with pytest.raises(BoardBusy) as info:
            BoardLock("b", "/dev/ttyUSB0", tmp_path).acquire(timeout=0)
    text = str(info.value)
    assert "stale holder record" in text and f"pid {dead_pid}, which it names, has exited" in text
    assert f"held by pid {dead_pid}" not in text and "for gone" not in text


def test_same_process_second_lock_object_is_excluded(tmp_path):
    with BoardLock("a", "/dev/ttyUSB0", tmp_path):
        with pytest.raises(BoardBusy, match="unknown|pid"):
            BoardLock("b", "/dev/ttyUSB0", tmp_path).acquire(timeout=0.1)
