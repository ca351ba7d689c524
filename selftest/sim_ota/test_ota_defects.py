"""Every OTA defect changes what the device does in a way a scenario can see (the correct firmware's
outcome is asserted next to it); plus the periodic check task."""

from __future__ import annotations

import threading

import pytest

from hil.sim.firmware import COMMANDS
from hil.sim.firmware.console import serve
from hil.sim.firmware.ota import OtaTimer, ota_check
from hil.sim.runtime import Reboot
from sim_ota.test_ota_update import erased, event, secondary


@pytest.mark.parametrize("defect,fault,params,correct", [
    ("ota-skip-hash", "bad_hash", {}, "HASH_MISMATCH"),
    ("ota-skip-signature", "bad_signature", {}, "SIGNATURE_INVALID"),
    ("ota-skip-signature", "wrong_signing_key", {}, "SIGNATURE_INVALID"),
    ("ota-accept-downgrade", "offer_version", {"version": "0.9.0"}, "DOWNGRADE_REFUSED"),
    ("ota-no-resume", "drop_connection", {"chunk": 4, "times": 1}, None),
])
def test_defect_changes_the_outcome(make_ota_server, make_ota_device, ota_images, defect, fault, params, correct):
    server = make_ota_server()
    server.fault(fault, **params)
    rt, device = make_ota_device(server.url)
    if correct is None:
        with pytest.raises(Reboot):  # correct firmware: resumes and installs
            ota_check(device)
    else:
        assert ota_check(device) == correct and erased(rt)
    server = make_ota_server()
    server.fault(fault, **params)
    rt, device = make_ota_device(server.url, (defect,))
    if correct is None:
        assert ota_check(device) == "DOWNLOAD_FAILED" and not event(rt, "ota.retry")
    else:
        with pytest.raises(Reboot):  # the defective firmware installs what it should have refused
            ota_check(device)
        image = ota_images.signed["v0.9" if fault == "offer_version" else "v2"]
        assert secondary(rt)[:len(image)] == image
        assert bool(event(rt, "ota.unverified")) is defect.startswith("ota-skip")  # the log admits skipped checks


def test_keep_partial_on_failure_leaves_the_download_in_the_slot(make_ota_server, make_ota_device):
    server = make_ota_server()
    server.fault("corrupt_chunk", chunk=3)
    rt, device = make_ota_device(server.url, ("ota-keep-partial-on-failure",))
    assert ota_check(device) == "HASH_MISMATCH"
    assert not erased(rt) and secondary(rt)[:4] == bytes.fromhex("3db8f396")  # the MCUboot magic, LE


def test_periodic_check_installs_and_restarts_from_the_console_task(make_ota_server, make_ota_device):
    server = make_ota_server()
    rt, device = make_ota_device(server.url, ota_period_s=3600)
    timer = OtaTimer.from_nvs(device)
    assert timer.period_s == 3600
    timer.period_s = 0.05  # the provisioned period is whole seconds; keep the test fast
    with timer:
        rt.wait_for(r"ota: Rebooting into 2\.0\.0")
    assert event(rt, "ota.timer") == [{"period": "0.05"}]
    assert device.restart_pending() == "ota update to 2.0.0"
    assert not any(t.name == "ota-timer" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(Reboot, match="ota update"):  # the console task carries the restart out
        serve(device, COMMANDS)


def test_a_restart_asked_for_while_the_console_waits_is_carried_out_at_once(make_ota_server, make_ota_device):
    rt, device = make_ota_device(make_ota_server().url)
    ended: list[str] = []

    def console_task() -> None:
        try:
            serve(device, COMMANDS)  # waits for a console line: no line will come
        except Reboot as reboot:
            ended.append(reboot.reason)

    task = threading.Thread(target=console_task, daemon=True)
    task.start()
    device.request_restart("ota update to 2.0.0")  # what the OTA timer task does after an install
    task.join(5)
    assert ended == ["ota update to 2.0.0"], "the console task did not wake up for the restart"
