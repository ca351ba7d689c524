"""Cross-process lock per board (one board per pytest-xdist worker, benches shared by people).

The lock is an OS file lock (``filelock``) on ``<lock_dir>/<key>.lock``, keyed by the board's port,
so two processes naming the same port differently through ``NAME=URL`` still exclude each other.
The holder (pid, host, owner/test id, since) is recorded in ``<key>.holder.json`` next to it, so a
waiter that times out can say who holds the board. The OS drops the lock when the holder dies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path

# filelock (it loads asyncio) is imported where a lock is made or taken: the pytest plugin imports this
# module for DEFAULT_LOCK_TIMEOUT (hil.board.options) in every run, board or not.

DEFAULT_LOCK_DIR = Path(tempfile.gettempdir()) / "hil-locks"
DEFAULT_LOCK_TIMEOUT = 300.0


class BoardBusy(TimeoutError):
    """The board stayed locked by someone else for the whole timeout."""


def lock_key(port: str) -> str:
    """File-name-safe key of a port: readable part plus a short hash (ports differ only in punctuation)."""
    readable = re.sub(r"[^A-Za-z0-9]+", "_", port).strip("_")[-60:]
    return f"{readable}-{hashlib.sha1(port.encode()).hexdigest()[:8]}"


class BoardLock:
    """Exclusive use of one board across processes. Use as a context manager or acquire/release."""

    def __init__(self, board: str, port: str, lock_dir: str | Path | None = None, owner: str = "") -> None:
        import filelock

        self.board = board
        self.port = port
        self.owner = owner
        directory = Path(lock_dir) if lock_dir else DEFAULT_LOCK_DIR
        key = lock_key(port)
        self.lock_path = directory / f"{key}.lock"
        self.holder_path = directory / f"{key}.holder.json"
        self._lock = filelock.FileLock(self.lock_path, thread_local=False)
        self._since = 0.0

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._lock.is_locked

    def holder(self) -> dict | None:
        """The recorded holder (pid, host, owner, since), or None if unknown."""
        try:
            return json.loads(self.holder_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def describe_holder(self) -> str:
        """Who holds the board, in words."""
        info = self.holder()
        if not info:
            return "an unknown process (no holder record)"
        age = time.time() - float(info.get("since", time.time()))
        owner = f" for {info['owner']}" if info.get("owner") else ""
        return f"pid {info.get('pid')} on {info.get('host')}{owner} (since {age:.0f} s ago)"

    def acquire(self, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        """Take the lock, waiting up to ``timeout`` s; raises :class:`BoardBusy` naming the holder."""
        import filelock

        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise BoardBusy(
                f"board {self.board} ({self.port}) is busy: held by {self.describe_holder()}; waited "
                f"{timeout:g} s. Wait for that run to finish or stop it (lock file {self.lock_path})"
            ) from None
        self._since = time.time()
        self._write_holder()

    def set_owner(self, owner: str) -> None:
        """Update what the holder record says is using the board (e.g. the current test id)."""
        self.owner = owner
        if self.held:
            self._write_holder()

    def _write_holder(self) -> None:
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "owner": self.owner,
            "since": self._since,
            "board": self.board,
            "port": self.port,
        }
        tmp = self.holder_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, self.holder_path)  # readers never see a half-written record

    def release(self) -> None:
        """Drop the lock (and the holder record, written by us)."""
        if not self.held:
            return
        info = self.holder()
        if info and info.get("pid") == os.getpid():
            self.holder_path.unlink(missing_ok=True)
        self._lock.release(force=True)

    def __enter__(self) -> BoardLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
