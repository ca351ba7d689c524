"""Cross-process lock per board (one board per pytest-xdist worker, benches shared by people).

The lock is an OS file lock (``filelock``, ``flock``) on ``<lock_dir>/<key>.lock``, keyed by the
device the port names (:func:`hil.board.port_identity.resolve_port`), so two spellings of one board
(its by-id link and ``/dev/ttyUSB0``, ``localhost`` and ``127.0.0.1``) exclude each other. The
holder (pid, host, owner/test id, since) is recorded in ``<key>.holder.json`` next to it, so a
waiter that times out can say who holds the board. The OS drops the lock when the holder dies,
even by ``kill -9``: a stale lock never blocks; a record left behind by a dead holder is called
stale, never named as the holder. A lock that cannot work (directory not writable, a filesystem
without ``flock``) is an error saying what to do, never a silent fallback to a lock file that a
dead process would leave behind.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from hil.board.inventory import BY_ID_DIR
from hil.board.port_identity import resolve_port

# filelock (it loads asyncio) is imported where a lock is made or taken: the pytest plugin imports this
# module for DEFAULT_LOCK_TIMEOUT (hil.board.options) in every run, board or not.
if TYPE_CHECKING:
    import filelock

DEFAULT_LOCK_DIR = Path(tempfile.gettempdir()) / "hil-locks"
DEFAULT_LOCK_TIMEOUT = 300.0
# Everyone sharing the bench locks in one directory: like /tmp, anyone may add a lock, only its owner
# may remove it; lock files are read-write for all (the lock is the flock, not the file's mode).
SHARED_DIR_MODE = 0o1777
LOCK_FILE_MODE = 0o666
_NO_FLOCK_ERRNOS = frozenset({errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK})


class BoardBusy(TimeoutError):
    """The board stayed locked by someone else for the whole timeout."""


class LockUnavailable(OSError):
    """The board's lock cannot be taken at all (not a busy board): the message says what to do."""


def lock_key(device: str) -> str:
    """File-name-safe key of a resolved device: readable part plus a short hash (devices can
    differ only in punctuation)."""
    readable = re.sub(r"[^A-Za-z0-9]+", "_", device).strip("_")[-60:]
    return f"{readable}-{hashlib.sha1(device.encode()).hexdigest()[:8]}"


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BoardLock:
    """Exclusive use of one board across processes. Use as a context manager or acquire/release.

    The port is resolved to its device on first use (acquire, holder), not in the constructor.
    """

    def __init__(
        self,
        board: str,
        port: str,
        lock_dir: str | Path | None = None,
        owner: str = "",
        *,
        by_id_dir: str = BY_ID_DIR,
    ) -> None:
        self.board = board
        self.port = port
        self.owner = owner
        self.directory = Path(lock_dir) if lock_dir else DEFAULT_LOCK_DIR
        self._by_id_dir = by_id_dir
        self._device: str | None = None
        self._lock: filelock.BaseFileLock | None = None
        self._since = 0.0

    @property
    def device(self) -> str:
        """The device the port names (the lock's key before escaping)."""
        if self._device is None:
            self._device = resolve_port(self.port, self._by_id_dir)
        return self._device

    @property
    def lock_path(self) -> Path:
        """The file the OS lock is taken on."""
        return self.directory / f"{lock_key(self.device)}.lock"

    @property
    def holder_path(self) -> Path:
        """The holder record next to the lock file."""
        return self.directory / f"{lock_key(self.device)}.holder.json"

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._lock is not None and self._lock.is_locked

    def holder(self) -> dict | None:
        """The recorded holder (pid, host, owner, since, board, port, device), or None if unknown.
        The record may be stale (its process gone): see :meth:`describe_holder`."""
        try:
            return json.loads(self.holder_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def describe_holder(self) -> str:
        """Who holds the board, in words; a record whose process has exited is called stale."""
        info = self.holder()
        if not info:
            return "an unknown process (no holder record)"
        pid = info.get("pid")
        if info.get("host") == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
            return (
                f"an unknown process (stale holder record {self.holder_path}: pid {pid}, which it names, "
                "has exited; whatever holds the lock now wrote no record)"
            )
        age = time.time() - float(info.get("since", time.time()))
        owner = f" for {info['owner']}" if info.get("owner") else ""
        spelling = f", as {info['port']}" if info.get("port") not in (None, self.port) else ""
        return f"pid {pid} on {info.get('host')}{owner} (since {age:.0f} s ago{spelling})"

    def acquire(self, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        """Take the lock, waiting up to ``timeout`` s (0: one try). Raises :class:`BoardBusy`
        naming the holder, or :class:`LockUnavailable` when the lock cannot work here."""
        import filelock

        lock = self._file_lock()
        try:
            with warnings.catch_warnings():  # filelock warns, then falls back to a soft lock: refused below
                warnings.filterwarnings("ignore", "flock not supported")
                lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise BoardBusy(
                f"board {self.board} ({self._named()}) is busy: held by {self.describe_holder()}; waited "
                f"{timeout:g} s. Wait for that run to finish or stop it (lock file {self.lock_path})"
            ) from None
        except PermissionError as exc:
            raise self._not_writable(exc) from exc
        except NotImplementedError as exc:  # older filelock's answer to a filesystem without flock
            raise self._no_flock(exc) from exc
        except OSError as exc:
            if exc.errno in _NO_FLOCK_ERRNOS:
                raise self._no_flock(exc) from exc
            raise
        if isinstance(lock, filelock.SoftFileLock):  # flock missing: filelock swapped in a soft lock
            lock.release(force=True)
            raise self._no_flock(OSError(errno.ENOSYS, "flock not supported on this filesystem"))
        self._since = time.time()
        self._write_holder()

    def _file_lock(self) -> filelock.BaseFileLock:
        import filelock

        if self._lock is None:
            self._make_directory()
            self._lock = filelock.FileLock(self.lock_path, mode=LOCK_FILE_MODE, thread_local=False)
        return self._lock

    def _make_directory(self) -> None:
        if self.directory.is_dir():
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, SHARED_DIR_MODE)  # mkdir's mode is cut by the umask
        except OSError as exc:
            raise LockUnavailable(
                exc.errno,
                f"board {self.board} ({self.port}): cannot create the board lock directory {self.directory}: "
                f"{exc.strerror or exc}. Give --hil-lock-dir=DIR (ini hil_lock_dir), a directory on a local "
                "filesystem that everyone sharing the boards can write",
            ) from exc

    def _named(self) -> str:
        return self.port if self.device == self.port else f"{self.port}, device {self.device}"

    def _not_writable(self, exc: OSError) -> LockUnavailable:
        return LockUnavailable(
            exc.errno,
            f"board {self.board} ({self._named()}): cannot open lock file {self.lock_path}: {exc.strerror or exc} "
            f"(uid {os.getuid()}). Make {self.directory} writable by everyone sharing the boards "
            f"(chmod 1777 {self.directory}, as /tmp), or give --hil-lock-dir=DIR (ini hil_lock_dir) you can write",
        )

    def _no_flock(self, exc: BaseException) -> LockUnavailable:
        return LockUnavailable(
            errno.ENOLCK,
            f"board {self.board} ({self._named()}): the filesystem of {self.directory} does not support "
            f"file locks ({exc}); a lock there would outlive a crashed run. Give --hil-lock-dir=DIR "
            "(ini hil_lock_dir) on a local filesystem (the default is under /tmp)",
        )

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
            "device": self.device,
        }
        tmp = self.holder_path.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, self.holder_path)  # readers never see a half-written record
        except PermissionError:
            # another user's record in a shared (sticky) directory: the lock is ours all the same, and
            # that record's process has exited (it would hold the lock otherwise), so waiters call it stale
            tmp.unlink(missing_ok=True)

    def release(self) -> None:
        """Drop the lock (and the holder record, written by us)."""
        if self._lock is None or not self.held:
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
