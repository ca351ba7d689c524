"""SQLite storage of the reference server (WAL): devices and last nonces, readings, security events, faults.

Key material is never stored here: the registry keeps keys in memory. Connections come from a small
pool because the threaded WSGI server runs each request on a fresh thread; every write is a single
statement or one ``BEGIN IMMEDIATE`` transaction, so concurrent requests serialise in SQLite.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.protocol.readings import Readings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, last_nonce INTEGER);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, nonce INTEGER NOT NULL, received_at REAL NOT NULL,
    sample_time INTEGER NOT NULL, register TEXT NOT NULL, value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS readings_device ON readings (device_id, id);
CREATE TABLE IF NOT EXISTS security_events (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, device_id TEXT, peer TEXT, code TEXT NOT NULL, detail TEXT);
CREATE TABLE IF NOT EXISTS faults (id INTEGER PRIMARY KEY, name TEXT NOT NULL, params TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ota_status (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, device_id TEXT NOT NULL, peer TEXT, firmware_version TEXT NOT NULL,
    status TEXT NOT NULL, progress_percent REAL, error_code TEXT, error_message TEXT, old_version TEXT,
    rolled_back_to TEXT, fw134_phase TEXT);
CREATE INDEX IF NOT EXISTS ota_status_device ON ota_status (device_id, id);
"""
OTA_STATUS_FIELDS = (
    "firmware_version",
    "status",
    "progress_percent",
    "error_code",
    "error_message",
    "old_version",
    "rolled_back_to",
    "fw134_phase",  # the ecowatt-fw134 progress phase or complete status the report was normalised from
)
BUSY_TIMEOUT_MS = 10_000


ALL = -1  # a limit of -1 is SQLite's "no limit": every row


@dataclass(frozen=True)
class NonceDecision:
    """Outcome of the compare-and-advance: ``accepted``, and the stored last nonce when refused."""

    accepted: bool
    last_nonce: int | None


class Storage:
    """The server database. Call :meth:`open` (creates the schema), then :meth:`close`; or use ``with``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def open(self) -> Storage:
        """Create the file and schema and switch the database to WAL."""
        with self._connection() as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode}); use a local filesystem")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(ota_status)")}
            if "fw134_phase" not in columns:  # a database made before ecowatt-fw134 OTA reports
                db.execute("ALTER TABLE ota_status ADD COLUMN fw134_phase TEXT")
        return self

    def close(self) -> None:
        """Close every pooled connection; later calls fail."""
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def __enter__(self) -> Storage:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- devices and nonces ----------------------------------------------------------------------
    def register_devices(self, device_ids: Iterable[str]) -> None:
        """Make sure every registered device has a row (a new one starts with no nonce: first contact)."""
        with self._connection() as db:
            db.executemany("INSERT OR IGNORE INTO devices (device_id) VALUES (?)", [(d,) for d in device_ids])

    def advance_nonce(self, device_id: str, nonce: int, *, allow_equal: bool = False) -> NonceDecision:
        """Atomically set ``last_nonce = nonce`` iff there is none yet or ``nonce > last_nonce``.

        One UPDATE with the comparison in its WHERE clause: of N concurrent equal packets exactly one
        changes the row. ``allow_equal`` is the ``replay-allowed-equal-nonce`` defect.
        """
        op = "<=" if allow_equal else "<"
        with self._connection() as db:
            cur = db.execute(
                f"UPDATE devices SET last_nonce = ? WHERE device_id = ? AND (last_nonce IS NULL OR last_nonce {op} ?)",
                (nonce, device_id, nonce),
            )
            if cur.rowcount == 1:
                return NonceDecision(True, None)
            row = db.execute("SELECT last_nonce FROM devices WHERE device_id = ?", (device_id,)).fetchone()
        return NonceDecision(False, None if row is None else row[0])

    def devices(self) -> list[dict[str, Any]]:
        """Every device row: ``device_id`` and ``last_nonce`` (no keys)."""
        with self._connection() as db:
            rows = db.execute("SELECT device_id, last_nonce FROM devices ORDER BY device_id").fetchall()
        return [{"device_id": d, "last_nonce": n} for d, n in rows]

    # -- readings --------------------------------------------------------------------------------
    def store_readings(self, nonce: int, readings: Readings) -> None:
        """Store every sample of one accepted upload in one transaction."""
        now = time.time()
        rows = [(readings.device_id, nonce, now, readings.timestamp, r.register, r.value) for r in readings.readings]
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO readings (device_id, nonce, received_at, sample_time, register, value) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def readings(self, device_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Stored samples, oldest first, optionally of one device; at most *limit* (:data:`ALL`: every one)."""
        sql = "SELECT device_id, nonce, received_at, sample_time, register, value FROM readings"
        args: tuple[Any, ...] = ()
        if device_id is not None:
            sql, args = sql + " WHERE device_id = ?", (device_id,)
        with self._connection() as db:
            rows = db.execute(sql + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        keys = ("device_id", "nonce", "received_at", "timestamp", "register", "value")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- security events -------------------------------------------------------------------------
    def record_event(self, *, device_id: str | None, peer: str | None, code: str, detail: str) -> None:
        """Append one security event (a rejected request)."""
        with self._connection() as db:
            db.execute(
                "INSERT INTO security_events (time, device_id, peer, code, detail) VALUES (?, ?, ?, ?, ?)",
                (time.time(), device_id, peer, code, detail),
            )

    def events(
        self, *, device_id: str | None = None, code: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Security events, oldest first, filtered by device and/or code; at most *limit* (:data:`ALL`: every one)."""
        where, args = [], []
        for column, value in (("device_id", device_id), ("code", code)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT id, time, device_id, peer, code, detail FROM security_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._connection() as db:
            rows = db.execute(sql + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [dict(zip(("id", "time", "device_id", "peer", "code", "detail"), row, strict=True)) for row in rows]

    # -- faults (consumed by the OTA blueprint) --------------------------------------------------
    def add_fault(self, name: str, params: dict[str, Any]) -> None:
        """Activate one fault ``{name, params}``."""
        with self._connection() as db:
            db.execute("INSERT INTO faults (name, params) VALUES (?, ?)", (name, json.dumps(params)))

    def faults(self) -> list[dict[str, Any]]:
        """Active faults in the order they were added."""
        with self._connection() as db:
            rows = db.execute("SELECT name, params FROM faults ORDER BY id").fetchall()
        return [{"name": name, "params": json.loads(params)} for name, params in rows]

    def active_faults(self) -> list[dict[str, Any]]:
        """Active faults with their row ``id`` (for :meth:`consume_fault`), in the order they were added."""
        with self._connection() as db:
            rows = db.execute("SELECT id, name, params FROM faults ORDER BY id").fetchall()
        return [{"id": fid, "name": name, "params": json.loads(params)} for fid, name, params in rows]

    def consume_fault(self, fault_id: int, *, default_times: int = 1) -> bool:
        """Use one shot of a count-limited fault: atomically decrement its ``params.times`` (absent =
        ``default_times``) iff it is still positive. False when spent or removed meanwhile, so of
        concurrent requests exactly ``times`` fire."""
        with self._connection() as db:
            cur = db.execute(
                "UPDATE faults SET params = json_set(params, '$.times', "
                "coalesce(json_extract(params, '$.times'), ?) - 1) "
                "WHERE id = ? AND coalesce(json_extract(params, '$.times'), ?) > 0",
                (default_times, fault_id, default_times),
            )
            return cur.rowcount == 1

    def clear_faults(self, name: str | None = None) -> int:
        """Remove every fault (or those called *name*); return how many were removed."""
        with self._connection() as db:
            if name is None:
                return db.execute("DELETE FROM faults").rowcount
            return db.execute("DELETE FROM faults WHERE name = ?", (name,)).rowcount

    # -- OTA status reports ----------------------------------------------------------------------
    def record_ota_status(self, *, device_id: str, peer: str | None, report: dict[str, Any]) -> int:
        """Store one validated ``POST /api/ota/status`` report; returns its row id."""
        with self._connection() as db:
            cur = db.execute(
                "INSERT INTO ota_status (time, device_id, peer, "
                + ", ".join(OTA_STATUS_FIELDS)
                + ") VALUES (?, ?, ?"
                + ", ?" * len(OTA_STATUS_FIELDS)
                + ")",
                (time.time(), device_id, peer, *(report.get(k) for k in OTA_STATUS_FIELDS)),
            )
            return int(cur.lastrowid or 0)

    def ota_statuses(self, device_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """OTA status reports, oldest first, optionally of one device."""
        keys = ("id", "time", "device_id", "peer", *OTA_STATUS_FIELDS)
        sql = f"SELECT {', '.join(keys)} FROM ota_status"
        args: tuple[Any, ...] = ()
        if device_id is not None:
            sql, args = sql + " WHERE device_id = ?", (device_id,)
        with self._connection() as db:
            rows = db.execute(sql + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- connections -----------------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._checkout()
        try:
            yield conn
        finally:
            self._pool.put(conn)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.path}: storage is closed")
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        # Autocommit (isolation_level=None): each statement is its own transaction unless BEGIN is explicit.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes, fast
        with self._lock:
            self._all.append(conn)
        return conn
