"""The upload cycle against the real reference server: stored readings, nonce order, encryption,
the console command and the periodic timer."""

from __future__ import annotations

import json
import re
import threading
import urllib.request

import pytest

from hil.console.profile import load_profile
from hil.protocol.readings import REGISTERS
from hil.sim.firmware import run_app
from hil.sim.firmware.sensors import sample_readings
from hil.sim.firmware.upload import UploadSettings, UploadTimer, upload_cycle
from hil.sim.runtime import Reboot
from sim_upload.conftest import ADMIN_TOKEN, nvs_value

PROFILE = load_profile("ecowatt-idf")


def event(rt, name: str) -> list[dict[str, str]]:
    """Fields of every line matching profile event *name* (the contract scenarios rely on)."""
    return [m.groupdict() for m in map(PROFILE.event(name).search, rt.lines) if m]


def admin_readings(url: str) -> list[dict]:
    request = urllib.request.Request(f"{url}/api/admin/readings?device_id=EW-0001",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.load(reply)["readings"]


def test_upload_stores_readings_intact_and_logs_ok(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url)
    assert upload_cycle(device) is True
    stored = admin_readings(server.url)
    expected = sample_readings("EW-0001", 10001, stored[0]["timestamp"])
    assert sorted((r["register"], r["value"]) for r in stored) == \
        sorted((r.register, r.value) for r in expected.readings)
    assert {r["register"] for r in stored} == set(REGISTERS) and {r["nonce"] for r in stored} == {10001}
    assert event(rt, "upload.ok") == [{"status": "200", "nonce": "10001", "count": "10"}]
    assert event(rt, "nonce.committed") == [{"nonce": "10001"}]
    sending = event(rt, "upload.sending")[0]
    assert sending["mode"] == "plain" and sending["url"] == f"{server.url}/api/upload/data"


def test_nonce_strictly_increases_and_is_in_nvs_before_the_post(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url)
    server.recorder.nvs_probe = lambda: nvs_value(rt.flash, "nonce")
    for _ in range(3):
        assert upload_cycle(device)
    # At the moment each request reached the server, NVS already held the nonce it carries.
    assert [(doc["nonce"], in_nvs) for doc, in_nvs in server.recorder.uploads] == \
        [(10001, 10001), (10002, 10002), (10003, 10003)]
    names = [name for name, _ in rt.checkpoints if name.startswith("upload.")]
    assert names == ["upload.nonce_committed", "upload.sent"] * 3
    assert device.identity.nonce == 10003


def test_encrypted_mode_stores_the_same_readings(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url, encrypt=True)
    assert UploadSettings.load(rt) == UploadSettings(encrypt=True, period_s=0)
    assert upload_cycle(device)
    doc = server.recorder.uploads[0][0]
    assert doc["encrypted"] is True and doc["compressed"] is True
    stored = server.stored()
    expected = sample_readings("EW-0001", doc["nonce"], stored[0]["timestamp"])
    assert sorted((r["register"], r["value"]) for r in stored) == \
        sorted((r.register, r.value) for r in expected.readings)
    assert event(rt, "upload.sending")[0]["mode"] == "encrypted"


def test_readings_vary_between_uploads():
    first, second = sample_readings("EW-0001", 10001, 0), sample_readings("EW-0001", 10002, 0)
    assert first == sample_readings("EW-0001", 10001, 0)
    assert all(a.value != b.value for a, b in zip(first.readings, second.readings))
    vac = next(r.value for r in first.readings if r.register == "Vac1")
    assert 220 < vac < 240


def test_console_upload_command_runs_a_cycle(make_server, make_device, booted):
    server = make_server()
    rt, _ = make_device(server.url)
    rt.type_line("upload")
    rt.type_line("reboot")
    with pytest.raises(Reboot):
        run_app(rt, booted)
    assert server.recorder.nonces == [10001]
    assert event(rt, "upload.ok")[0]["nonce"] == "10001"
    assert not event(rt, "upload.timer")  # no upload_period_s provisioned: no timer


def test_periodic_timer_uploads_and_stops_with_the_app(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url, period=1)
    timer = UploadTimer.from_nvs(device)
    assert timer.period_s == 1
    timer.period_s = 0.1  # the provisioned period is whole seconds; keep the test fast
    with timer:
        rt.wait_for(PROFILE.event("upload.ok").pattern, count=2)
    count = len(server.recorder.uploads)
    assert event(rt, "upload.timer") == [{"period": "0.1"}]
    assert server.recorder.nonces == list(range(10001, 10001 + count))
    assert not any(t.name == "upload-timer" and t.is_alive() for t in threading.enumerate())


def test_timer_ends_when_the_chip_halts(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url)
    timer = UploadTimer(device, 0.05).start()
    rt.wait_for(r"Upload successful")
    rt.halt()
    timer.stop()
    assert not any(t.name == "upload-timer" and t.is_alive() for t in threading.enumerate())


def test_unprovisioned_url_fails_without_using_a_nonce(make_server, make_device):
    rt, device = make_device("ftp://example")
    assert upload_cycle(device) is False
    assert event(rt, "upload.failed") and not event(rt, "nonce.committed")
    assert nvs_value(rt.flash, "nonce") == 10000
    assert re.search(r"provision a valid server_url", "\n".join(rt.lines))
