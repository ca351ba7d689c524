"""The device app's start-up (ESP-IDF ``app_init`` + ``app_main``): the composition root of the
firmware model. It builds the console command table from the features and starts their timers;
the features know only the shared :class:`~hil.sim.firmware.device.Device`, never each other or the app.
"""

from __future__ import annotations

from typing import NoReturn

from hil.images.app_desc import AppDesc, find_app_desc
from hil.sim.booted import BootedImage
from hil.sim.firmware import wifi
from hil.sim.firmware.coap import CoapService, cmd_coap_sessions
from hil.sim.firmware.console import Command, CommandTable, cmd_reboot, cmd_status, serve
from hil.sim.firmware.device import Device
from hil.sim.firmware.identity import NvsStore
from hil.sim.firmware.idf_log import IdfLog
from hil.sim.firmware.ota import OtaTimer, cmd_ota_check
from hil.sim.firmware.ota_boot import check_update_outcome
from hil.sim.firmware.upload import UploadTimer, cmd_upload, raise_boot_nonce
from hil.sim.runtime import Reboot, Runtime

PANIC_REBOOT_DELAY_S = 0.2  # the panic handler's time before the chip resets

COMMANDS = CommandTable(
    [
        Command("status", cmd_status, "print version, nonce and server"),
        Command("reboot", cmd_reboot, "restart the chip"),
        Command("upload", cmd_upload, "run one upload cycle now"),
        Command("ota check", cmd_ota_check, "check the server for a firmware update and install it"),
        Command("coap sessions", cmd_coap_sessions, "print the CoAPS session count"),
    ]
)
"""The app's console commands (``help`` is the console's own: it lists whatever table it serves)."""


def _app_init(log: IdfLog, desc: AppDesc) -> None:
    log.i("cpu_start", "Pro cpu start user code")
    log.i("app_init", "Application information:")
    log.i("app_init", f"Project name:     {desc.project_name}")
    log.i("app_init", f"App version:      {desc.version}")
    log.i("app_init", f"Secure version:   {desc.secure_version}")
    log.i("app_init", f"Compile time:     {desc.date} {desc.time}")
    log.i("app_init", f"ELF file SHA256:  {desc.elf_sha256.hex()[:16]}...")
    log.i("app_init", f"ESP-IDF:          {desc.idf_ver}")
    log.i("main_task", "Started on CPU0")
    log.i("main_task", "Calling app_main()")


def _panic(rt: Runtime, log: IdfLog, why: str) -> NoReturn:
    log.e("app_init", why)
    log.raw("")
    log.raw("abort() was called at PC 0x400d2f1c on core 0")
    log.raw("Rebooting...")
    rt.wait(PANIC_REBOOT_DELAY_S)
    raise Reboot(f"abort: {why}")


def start(rt: Runtime, booted: BootedImage) -> Device:
    """Run the app's start-up up to the console: app_init lines, version banner, NVS load, the
    station's network up."""
    log = IdfLog(rt)
    try:
        desc = find_app_desc(booted.app_image)
    except ValueError as exc:
        _panic(rt, log, f"image at 0x{booted.slot_offset:x} has no valid esp_app_desc_t: {exc}")
    _app_init(log, desc)
    device = Device(rt, log, booted, desc, NvsStore(rt))
    log.i("ecowatt", f"Firmware Version: {device.version}")
    identity, problems = device.store.load()
    for problem in problems:
        log.w("nvs", problem)
    if identity is None:
        log.w("nvs", "no device identity provisioned")
    else:
        device.identity = identity
        log.i("nvs", f"Device ID: {identity.device_id}")
        raise_boot_nonce(device)  # fw134: a nonce below its boot floor starts at the floor
        log.i("security", f"Nonce loaded from NVS: {device.identity.nonce}")
    wifi.bring_up(rt, log)  # the network is up before any upload or OTA task starts
    return device


def run_app(rt: Runtime, booted: BootedImage) -> None:
    """The app (a :data:`hil.sim.booted.App`): start up, settle an OTA update it booted into or out
    of (self-test, confirm, report), then serve the console until reset (``Reboot``/``Halted``); the
    periodic upload and OTA tasks and the CoAP/CoAPS servers run alongside and are stopped when the
    app ends."""
    device = start(rt, booted)
    check_update_outcome(device)
    with UploadTimer.from_nvs(device), OtaTimer.from_nvs(device), CoapService(device):
        serve(device, COMMANDS)
