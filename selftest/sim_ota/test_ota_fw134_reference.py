"""The virtual board in ``ecowatt-fw134`` mode against the real reference server speaking that
profile (``hil server --wire-profile ecowatt-fw134``: :mod:`hil.server.ota_fw134`), not a stand-in:
a whole update through the boot chain, and the server reading each failure's error code out of the
device's report message, as the wire contract says it must."""

from __future__ import annotations

import pytest
from sim_boot.fakes import boot
from sim_upload.fakes import SELFTEST_ADMIN_TOKEN

from hil.server.config import DeviceKeys, ServerConfig
from hil.server.handle import ServerHandle
from hil.sim.firmware.ota import ota_check
from hil.sim.runtime import Reboot
from hil.wire.profile import load_profile
from sim_ota.test_ota_fw134 import DEVICE, FW134, failed_cleanly
from sim_ota.test_ota_update import event


@pytest.fixture
def reference_server(tmp_path, identity, ota_images, firmware_dirs):
    """The reference server (``hil.server``) speaking ecowatt-fw134, serving the ``main`` packages."""
    key = tmp_path / "fota-signing-key.pem"
    key.write_bytes(ota_images.fota_private_pem)
    config = ServerConfig(
        tmp_path / "db.sqlite",
        {DEVICE: DeviceKeys(DEVICE, identity.hmac_key, identity.aes_key)},
        SELFTEST_ADMIN_TOKEN,
        rate_limit=0,
        firmware_dir=firmware_dirs["main"],
        fota_signing_key=key,
        wire=load_profile("ecowatt-fw134"),
    )
    with ServerHandle(config, host="127.0.0.1", port=0) as handle:
        yield handle


def stored(handle) -> list[tuple]:
    return [(s["status"], s["firmware_version"], s["error_code"]) for s in handle.state.storage.ota_statuses(DEVICE)]


def test_interoperates_with_the_reference_fw134_server(reference_server, make_board):
    flash = make_board(reference_server.url, wire=FW134)
    with pytest.raises(Reboot):
        boot(flash, inputs=("ota check",))
    after = boot(flash)
    assert event(after, "ota.confirmed") == [{"version": "2.0.0"}]
    reports = stored(reference_server)
    assert reports[0] == ("downloading", "2.0.0", None) and reports[-1] == ("success", "2.0.0", None)
    assert {s for s, _, _ in reports} == {"downloading", "verifying", "success"}


@pytest.mark.parametrize(
    "fault,params,code",
    [
        ("corrupt_chunk", {"chunk": 5}, "HASH_MISMATCH"),
        ("bad_signature", {}, "SIGNATURE_INVALID"),
        ("offer_version", {"version": "0.9.0"}, "DOWNGRADE_REFUSED"),
        ("truncate_chunk", {"chunk": 5}, "DOWNLOAD_FAILED"),
    ],
)
def test_the_reference_fw134_server_reads_the_failure_code_from_the_message(
    reference_server, make_ota_device, fault, params, code
):
    reference_server.state.storage.add_fault(fault, params)
    rt, device = make_ota_device(reference_server.url, wire=FW134)
    assert ota_check(device) == code
    assert stored(reference_server)[-1] == ("failed", "2.0.0" if code != "DOWNGRADE_REFUSED" else "0.9.0", code)
    failed_cleanly(rt, device)
