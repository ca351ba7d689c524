"""The OTA update against the real reference server and real packages: the happy path up to the
reboot, the refusals, and every fault the server injects — each ends with the right outcome, the
right status reports and the secondary slot erased."""

from __future__ import annotations

import pytest

from hil.console.profile import load_profile
from hil.images import mcuboot as mb
from hil.sim.firmware import bootctl
from hil.sim.firmware.ota import ota_check
from hil.sim.runtime import Reboot
from sim_ota.conftest import LAYOUT
from sim_upload.fakes import ANSI

PROFILE = load_profile("ecowatt-idf")


def event(rt, name: str) -> list[dict[str, str]]:
    """Fields of every line matching profile event *name* (the contract scenarios rely on)."""
    return [m.groupdict() for m in (PROFILE.event(name).search(ANSI.sub("", line)) for line in rt.lines) if m]


def secondary(rt) -> bytes:
    return rt.flash.read(LAYOUT.secondary_slot, LAYOUT.slot_size)


def erased(rt) -> bool:
    return secondary(rt) == b"\xff" * LAYOUT.slot_size


def test_update_writes_the_verified_image_and_requests_a_test_swap(make_ota_server, make_ota_device, ota_images):
    server = make_ota_server()
    rt, device = make_ota_device(server.url)
    with pytest.raises(Reboot):
        ota_check(device)
    image = ota_images.signed["v2"]
    assert secondary(rt)[:len(image)] == image
    trailer = rt.flash.read(LAYOUT.secondary_slot + LAYOUT.slot_size - mb.trailer_tail_size(), mb.trailer_tail_size())
    assert mb.parse_trailer(trailer).magic is mb.MagicState.GOOD  # boot_set_pending: test swap
    assert event(rt, "ota.available") == [{"version": "2.0.0", "size": str(len(image))}]
    percents = [int(e["percent"]) for e in event(rt, "ota.progress")]
    assert [p // 25 for p in percents] == [0, 1, 2, 3, 4] and percents[-1] == 100  # one line per quarter
    assert event(rt, "ota.verified") and event(rt, "ota.rebooting") == [{"version": "2.0.0"}]
    assert [s[:3] for s in server.statuses()] == [("downloading", "2.0.0", p) for p in percents] + \
        [("verifying", "2.0.0", None)]
    total = -(-(len(image) // 16 + 1) * 16 // 2048)
    written = [f["chunk"] for name, f in rt.checkpoints if name == "ota.chunk_written"]
    assert written == list(range(total))
    names = [n for n, _ in rt.checkpoints if n.startswith(("ota.", "boot."))]
    assert names[-2:] == ["ota.verified", "boot.pending"]
    assert device.store.ota_attempt() == type(device.store.ota_attempt())("1.0.0", "2.0.0")


def failed_cleanly(rt, device, server, code: str) -> None:
    """The update failed with ``code``: slot erased, reported, nothing pending, nothing recorded."""
    assert erased(rt), "secondary slot not erased after a failed update"
    assert server.statuses()[-1][0] == "failed" and server.statuses()[-1][3] == code
    assert event(rt, "ota.failed")[-1]["code"] == code
    assert "boot.pending" not in [n for n, _ in rt.checkpoints] and device.store.ota_attempt() is None


@pytest.mark.parametrize("fault,params,code,event_name", [
    ("corrupt_chunk", {"chunk": 3}, "HASH_MISMATCH", "ota.hash_mismatch"),
    ("corrupt_chunk", {}, "HASH_MISMATCH", "ota.hash_mismatch"),          # every chunk, the last one's padding too
    ("bad_hash", {}, "HASH_MISMATCH", "ota.hash_mismatch"),
    ("bad_signature", {}, "SIGNATURE_INVALID", "ota.signature_invalid"),
    ("wrong_signing_key", {}, "SIGNATURE_INVALID", "ota.signature_invalid"),
    ("truncate_chunk", {"chunk": 3}, "DOWNLOAD_FAILED", "ota.download_failed"),
    ("drop_connection", {"chunk": 3, "times": 3}, "DOWNLOAD_FAILED", "ota.download_failed"),
])
def test_server_fault_fails_the_update_cleanly(make_ota_server, make_ota_device, fault, params, code, event_name):
    server = make_ota_server()
    server.fault(fault, **params)
    rt, device = make_ota_device(server.url)
    assert ota_check(device) == code
    failed_cleanly(rt, device, server, code)
    assert event(rt, event_name)


def test_persistent_chunk_fault_is_retried_three_times_on_new_connections(make_ota_server, make_ota_device):
    server = make_ota_server()
    server.fault("truncate_chunk", chunk=5)
    rt, device = make_ota_device(server.url)
    assert ota_check(device) == "DOWNLOAD_FAILED"
    assert [(e["chunk"], e["attempt"]) for e in event(rt, "ota.retry")] == [("5", "2"), ("5", "3")]
    assert event(rt, "ota.download_failed")[0]["chunk"] == "5"
    assert "expected 2048" in event(rt, "ota.download_failed")[0]["reason"]


def test_dropped_connection_resumes_at_the_same_chunk(make_ota_server, make_ota_device, ota_images):
    server = make_ota_server()
    server.fault("drop_connection", chunk=7, times=2)
    rt, device = make_ota_device(server.url)
    with pytest.raises(Reboot):
        ota_check(device)
    assert [(e["chunk"], e["attempt"]) for e in event(rt, "ota.retry")] == [("7", "2"), ("7", "3")]
    written = [f["chunk"] for name, f in rt.checkpoints if name == "ota.chunk_written"]
    assert written == sorted(set(written)) and written[0] == 0  # each chunk written once, in order
    assert secondary(rt)[:len(ota_images.signed["v2"])] == ota_images.signed["v2"]


def test_slow_chunk_within_the_timeout_is_fine_beyond_it_fails(make_ota_server, make_ota_device):
    server = make_ota_server()
    server.fault("delay_chunk", chunk=2, ms=600)
    rt, device = make_ota_device(server.url)
    assert ota_check(device, timeout=0.2) == "DOWNLOAD_FAILED"
    assert "timed out" in event(rt, "ota.download_failed")[0]["reason"]
    failed_cleanly(rt, device, server, "DOWNLOAD_FAILED")
    with pytest.raises(Reboot):
        ota_check(device, timeout=2.0)


def test_downgrade_is_refused_before_anything_is_downloaded(make_ota_server, make_ota_device):
    server = make_ota_server()
    server.fault("offer_version", version="0.9.0")
    rt, device = make_ota_device(server.url)
    assert ota_check(device) == "DOWNGRADE_REFUSED"
    assert event(rt, "ota.downgrade_refused") == [{"offered": "0.9.0", "current": "1.0.0"}]
    assert not [n for n, _ in rt.checkpoints if n == "ota.chunk_written"]
    failed_cleanly(rt, device, server, "DOWNGRADE_REFUSED")


def test_same_version_is_not_an_update(make_ota_server, make_ota_device):
    server = make_ota_server()
    rt, device = make_ota_device(server.url, running="v2")
    assert ota_check(device) == "none"
    assert event(rt, "ota.none") == [{"version": "2.0.0"}] and server.statuses() == []


def test_an_app_without_a_fota_key_cannot_verify_and_downloads_nothing(make_ota_server, make_ota_device):
    server = make_ota_server()
    rt, device = make_ota_device(server.url, running="no-key")
    assert ota_check(device) == "SIGNATURE_INVALID"
    assert not [n for n, _ in rt.checkpoints if n == "ota.chunk_written"]
    failed_cleanly(rt, device, server, "SIGNATURE_INVALID")


def test_unconfirmed_running_image_refuses_to_touch_the_secondary_slot(make_ota_server, make_ota_device):
    server = make_ota_server()
    rt, device = make_ota_device(server.url)
    end = LAYOUT.primary_slot + LAYOUT.slot_size
    for offset, value in mb.swapped_writes(mb.SwapType.TEST):  # as MCUboot leaves a test image
        rt.flash.write(end + offset, value)
    assert not bootctl.running_image_confirmed(rt)
    rt.flash.write(LAYOUT.secondary_slot, b"previous image")
    assert ota_check(device) == "error"
    assert event(rt, "ota.check_failed") and secondary(rt).startswith(b"previous image")


def test_https_update_verifies_the_server_against_the_provisioned_ca(make_ota_server, make_ota_device):
    good, mitm = make_ota_server(tls="real"), make_ota_server(tls="mitm")
    rt, device = make_ota_device(mitm.url)
    assert ota_check(device) == "error" and event(rt, "tls.failed") and mitm.statuses() == []
    rt, device = make_ota_device(good.url)
    with pytest.raises(Reboot):
        ota_check(device)
    assert good.statuses()[-1][0] == "verifying"


def test_failed_status_post_does_not_change_the_outcome(make_ota_server, make_ota_device):
    server = make_ota_server()
    server.tamper.replies["/api/ota/status"] = ("503 Service Unavailable", b"{}")
    server.fault("bad_hash")
    rt, device = make_ota_device(server.url)
    assert ota_check(device) == "HASH_MISMATCH"
    assert {e["status"] for e in event(rt, "ota.status_failed")} == {"downloading", "verifying", "failed"}
    assert erased(rt)
