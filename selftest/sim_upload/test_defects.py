"""Retries, and each upload defect changing the behaviour it names."""

from __future__ import annotations

import socket

import pytest

from hil.protocol.upload import compute_mac
from hil.sim.runtime import PowerCut
from hil.sim.firmware.upload import MAX_ATTEMPTS, RETRY_DELAY_S, upload_cycle
from sim_upload.conftest import nvs_value
from sim_upload.test_upload import event


def test_5xx_is_retried_with_a_new_committed_nonce(make_server, make_device, identity):
    server = make_server()
    server.recorder.fail_first = 1
    rt, device = make_device(server.url)
    server.recorder.nvs_probe = lambda: nvs_value(rt.flash, "nonce")
    assert upload_cycle(device)
    assert [(d["nonce"], n) for d, n in server.recorder.uploads] == [(10001, 10001), (10002, 10002)]
    assert all(d["mac"] == compute_mac(identity.hmac_key, d["nonce"], d["payload"]) for d, _ in server.recorder.uploads)
    assert event(rt, "upload.rejected")[0] == {"status": "503", "code": "UNAVAILABLE", "nonce": "10001"}
    assert event(rt, "upload.retry") == [{"attempt": "2", "attempts": str(MAX_ATTEMPTS)}]
    assert rt.waits == [RETRY_DELAY_S]
    assert event(rt, "upload.ok")[0]["nonce"] == "10002"


def test_connection_failures_give_up_after_max_attempts(make_device):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rt, device = make_device(f"http://127.0.0.1:{port}")
    assert upload_cycle(device) is False
    assert [e["nonce"] for e in event(rt, "upload.failed")] == ["10001", "10002", "10003"]
    assert event(rt, "upload.gave_up") == [{"attempts": str(MAX_ATTEMPTS)}]
    assert nvs_value(rt.flash, "nonce") == 10003


def test_nonce_reused_on_retry_defect(make_server, make_device):
    server = make_server()
    server.recorder.fail_first = 1
    rt, device = make_device(server.url, ("nonce-reused-on-retry",))
    assert upload_cycle(device)
    assert server.recorder.nonces == [10001, 10001]


def test_mac_over_payload_only_defect_is_refused_by_the_server(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url, ("mac-over-payload-only",))
    assert upload_cycle(device) is False
    assert event(rt, "upload.rejected") == [{"status": "403", "code": "INVALID_HMAC", "nonce": "10001"}]
    assert server.recorder.nonces == [10001] and server.stored() == []  # 4xx is final: no retry


def test_nonce_survives_a_reset(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url)
    assert upload_cycle(device)
    rt.halt()
    rt2, device2 = make_device(server.url, flash=rt.flash)  # same flash: a reset
    assert device2.identity.nonce == 10001
    assert upload_cycle(device2) and server.recorder.nonces == [10001, 10002]


def test_nonce_not_persisted_defect_reuses_the_nonce_after_a_reset(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url, ("nonce-not-persisted",))
    assert upload_cycle(device)
    assert nvs_value(rt.flash, "nonce") == 10000 and not event(rt, "nonce.committed")
    assert [n for n, _ in rt.checkpoints].count("upload.nonce_committed") == 1  # power-cut point still there
    rt.halt()
    rt2, device2 = make_device(server.url, ("nonce-not-persisted",), flash=rt.flash)
    assert upload_cycle(device2) is False
    assert server.recorder.nonces == [10001, 10001]
    assert event(rt2, "upload.rejected") == [{"status": "403", "code": "REPLAY_ATTACK", "nonce": "10001"}]


def _cut(fields: dict) -> None:
    raise PowerCut(f"power cut at {fields}")


@pytest.mark.parametrize("checkpoint", ["upload.nonce_committed", "upload.sent"])
def test_power_cut_never_leads_to_nonce_reuse(make_server, make_device, checkpoint):
    server = make_server()
    rt, device = make_device(server.url)
    rt.hooks[checkpoint] = _cut
    with pytest.raises(PowerCut):
        upload_cycle(device)
    assert nvs_value(rt.flash, "nonce") == 10001
    if checkpoint == "upload.nonce_committed":
        assert server.recorder.uploads == []  # cut before the connection was opened
    rt2, device2 = make_device(server.url, flash=rt.flash)  # power back: a fresh boot, same flash
    assert upload_cycle(device2)
    assert event(rt2, "upload.ok")[0]["nonce"] == "10002"


@pytest.mark.parametrize("defects, accepted", [((), False), (("https-downgrade-to-http",), True)])
def test_https_downgrade_defect_resends_in_the_clear(make_server, make_device, defects, accepted):
    server = make_server()  # plain HTTP behind an https:// URL: the TLS handshake fails
    rt, device = make_device(server.url.replace("http://", "https://"), defects)
    assert upload_cycle(device) is accepted
    assert len(event(rt, "tls.failed")) == 1
    assert server.recorder.nonces == ([10001] if accepted else [])  # the clear-text packet reached the port
