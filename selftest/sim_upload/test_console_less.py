"""A firmware without console commands (NVS ``ecowatt/console`` = 0, as the public EcoWatt firmware):
typed commands are read and ignored, and uploads come from the timer alone — what the harness's
``--hil-device-trigger timer`` drives by waiting. The same device with commands answers them."""

from __future__ import annotations

import threading

import pytest
from sim_boot.fakes import FakeFlash, _write
from sim_upload.conftest import LAYOUT

from hil.console.profile import load_profile
from hil.images import nvs
from hil.sim.firmware import COMMANDS, start
from hil.sim.firmware.console import serve
from hil.sim.firmware.identity import NAMESPACE
from hil.sim.firmware.upload import UploadTimer
from hil.sim.runtime import Halted
from sim_upload.fakes import ThreadedRuntime

PROFILE = load_profile("ecowatt-idf")


def device_with(nvs_image: bytes, booted, url: str, *, console: int | None):
    flash = FakeFlash()
    _write(flash, LAYOUT.nvs, nvs_image)
    writer = nvs.NvsWriter(flash, LAYOUT.nvs, LAYOUT.nvs_size)
    writer.set(NAMESPACE, "server_url", url, nvs.ItemType.SZ)
    if console is not None:
        writer.set(NAMESPACE, "console", console, nvs.ItemType.U8)
    rt = ThreadedRuntime(flash)
    return rt, start(rt, booted)


def serving(rt: ThreadedRuntime, device) -> threading.Thread:
    def run() -> None:
        try:
            serve(device, COMMANDS)
        except Halted:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("console", [0, None], ids=["no-commands", "commands"])
def test_console_less_firmware_ignores_commands_and_uploads_on_its_timer(nvs_image, booted, make_server,
                                                                       console) -> None:
    server = make_server()
    rt, device = device_with(nvs_image, booted, server.url, console=console)
    thread = serving(rt, device)
    try:
        rt.type_line("status")
        rt.type_line("upload")
        if console is None:  # the bench console answers both
            rt.wait_for(r"status: version=")
            rt.wait_for(PROFILE.event("upload.ok").pattern)
            return
        rt.wait_for(r"No console commands in this build")
        rt.type_line("help")
        rt.wait_consumed()  # every typed line read, and none did anything
        assert server.recorder.uploads == []
        assert not any(line.startswith("status:") or "unknown command" in line for line in rt.lines), rt.lines
        first = device.identity.nonce + 1
        with UploadTimer(device, 0.2):  # the firmware's own timer uploads
            rt.wait_for(PROFILE.event("upload.ok").pattern)
        assert server.recorder.nonces[0] == first
    finally:
        rt.halt()
        thread.join(5)
