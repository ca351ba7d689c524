"""SQLite storage: WAL mode, the compare-and-advance rule, no key material, device registry parsing."""

from __future__ import annotations

import json
import sqlite3

import pytest
from helpers_server import DEVICES

from hil.server import load_devices
from hil.server.config import DeviceRegistryError, ServerConfig
from hil.server.storage import NonceDecision, Storage


@pytest.fixture
def storage(tmp_path):
    with Storage(tmp_path / "db.sqlite") as db:
        db.register_devices(["EW-0001"])
        yield db


def test_database_is_in_wal_mode(storage) -> None:
    with sqlite3.connect(storage.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_compare_and_advance(storage) -> None:
    assert storage.advance_nonce("EW-0001", 50) == NonceDecision(True, None)      # first contact
    assert storage.advance_nonce("EW-0001", 50) == NonceDecision(False, 50)
    assert storage.advance_nonce("EW-0001", 49) == NonceDecision(False, 50)
    assert storage.advance_nonce("EW-0001", 50, allow_equal=True) == NonceDecision(True, None)
    assert storage.advance_nonce("EW-0001", 51) == NonceDecision(True, None)
    assert storage.advance_nonce("EW-0404", 1) == NonceDecision(False, None)      # unregistered: no row
    storage.register_devices(["EW-0001"])                                          # re-registering keeps state
    assert storage.devices() == [{"device_id": "EW-0001", "last_nonce": 51}]


def test_closed_storage_refuses_work(tmp_path) -> None:
    db = Storage(tmp_path / "x.sqlite").open()
    db.close()
    with pytest.raises(RuntimeError, match="closed"):
        db.devices()


def test_registry_file_round_trip_and_errors(tmp_path) -> None:
    good = tmp_path / "devices.json"
    entries = [{"device_id": d.device_id, "hmac_key": d.hmac_key.hex(), "aes_key": d.aes_key.hex()}
               for d in DEVICES.values()]
    good.write_text(json.dumps({"devices": entries}))
    assert load_devices(good) == DEVICES
    secret = "ab" * 31
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"devices": [{"device_id": "EW-1", "hmac_key": secret, "aes_key": "00" * 16}]}))
    with pytest.raises(DeviceRegistryError) as info:
        load_devices(bad)
    assert "hmac_key must be 32 bytes" in str(info.value) and secret not in str(info.value)
    bad.write_text(json.dumps({"devices": entries + entries[:1]}))
    with pytest.raises(DeviceRegistryError, match="listed twice"):
        load_devices(bad)
    with pytest.raises(DeviceRegistryError, match="cannot read"):
        load_devices(tmp_path / "missing.json")


def test_config_refuses_an_open_admin_api(tmp_path) -> None:
    with pytest.raises(ValueError, match="admin_token"):
        ServerConfig(db_path=tmp_path / "db", devices=DEVICES, admin_token="")
    assert "admin_token" not in repr(ServerConfig(db_path=tmp_path / "db", devices=DEVICES, admin_token="s3cret"))


def test_a_failed_store_keeps_nothing_and_the_next_one_works(storage) -> None:
    """One accepted upload is stored in one transaction: a row that cannot be written rolls back the
    rows before it, and the connection goes back to the pool outside any transaction."""
    from hil.protocol.readings import Reading, Readings

    good = Readings("EW-0001", 1_700_000_000, (Reading("Vac1", 230.0), Reading("Iac1", 1.5)))
    bad = Readings("EW-0001", 1_700_000_000, (Reading("Vac1", 230.0), Reading("Iac1", object())))  # type: ignore[arg-type]
    with pytest.raises(sqlite3.Error):
        storage.store_readings(10001, bad)
    assert storage.readings() == [], "the row before the failing one was kept"
    storage.store_readings(10002, good)
    assert [r["nonce"] for r in storage.readings()] == [10002, 10002]


def test_close_closes_every_pooled_connection(tmp_path) -> None:
    """close() closes every connection of the pool: SQLite checkpoints and removes the write-ahead log
    only when the last connection to the database closes, so no -wal file is left behind."""
    from hil.protocol.readings import Reading, Readings

    db = Storage(tmp_path / "db.sqlite").open()
    db.register_devices(["EW-0001"])
    db.store_readings(10001, Readings("EW-0001", 1_700_000_000, (Reading("Vac1", 230.0),)))
    wal = tmp_path / "db.sqlite-wal"
    assert wal.exists()
    db.close()
    assert not wal.exists(), "a pooled connection was left open after close()"
