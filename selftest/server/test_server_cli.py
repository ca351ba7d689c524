"""``hil server`` as a lab runs it: a subprocess that prints its URL and stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from helpers_server import DEVICES, UPLOAD, http_request, packet

from hil.cli import main


@pytest.fixture
def devices_file(tmp_path):
    path = tmp_path / "devices.json"
    path.write_text(json.dumps({"devices": [{"device_id": d.device_id, "hmac_key": d.hmac_key.hex(),
                                             "aes_key": d.aes_key.hex()} for d in DEVICES.values()]}))
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_then_exits_cleanly_on_signal(tmp_path, devices_file, sig) -> None:
    env = {**os.environ, "HIL_ADMIN_TOKEN": "cli-token"}
    proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "server", "--port", "0", "--db", str(tmp_path / "db"),
                             "--devices", str(devices_file), "--defect", "no-rate-limit"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        assert http_request(url, "POST", UPLOAD, packet(1).to_json())[0] == 200
        status, reply = http_request(url, "GET", "/api/admin/devices", headers={"Authorization": "Bearer cli-token"})
        assert reply["devices"][0] == {"device_id": "EW-0001", "last_nonce": 1}
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        log = proc.stderr.read()
        assert "defects: no-rate-limit" in log and "cli-token" not in log
        for keys in DEVICES.values():
            assert keys.hmac_key.hex() not in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_missing_arguments_and_bad_registry(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("HIL_ADMIN_TOKEN", raising=False)
    assert main(["server", "--db", str(tmp_path / "db")]) == 2
    assert "--devices, --admin-token" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["server", "--db", str(tmp_path / "db"), "--devices", str(bad), "--admin-token", "t"]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_list_defects_and_make_pki(tmp_path, capsys) -> None:
    assert main(["server", "--list-defects"]) == 0
    assert "nonce-advanced-before-mac" in capsys.readouterr().out
    assert main(["server", "--make-test-pki", str(tmp_path / "pki")]) == 0
    assert sorted(p.name for p in (tmp_path / "pki").iterdir()) == [
        "ca.pem", "mitm-ca.pem", "mitm-server.key", "mitm-server.pem", "server.key", "server.pem"]
