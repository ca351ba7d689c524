"""The device app's start-up (ESP-IDF ``app_init`` + ``app_main``) and its state."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NoReturn

from hil.images.app_desc import AppDesc, find_app_desc
from hil.sim.firmware.console import DEFAULT_COMMANDS, CommandTable, serve
from hil.sim.firmware.identity import DeviceIdentity, NvsStore
from hil.sim.firmware.idf_log import IdfLog
from hil.sim.firmware.ota import OtaTimer
from hil.sim.firmware.ota_boot import check_update_outcome
from hil.sim.firmware.upload import UploadTimer
from hil.sim.runtime import Reboot, Runtime

if TYPE_CHECKING:
    from hil.sim.boot.mcuboot import BootedImage

HARDCODED_VERSION = "1.0.0"  # what the app-version-hardcoded defect prints
PANIC_REBOOT_DELAY_S = 0.2   # the panic handler's time before the chip resets


@dataclass
class Device:
    """Everything the firmware model's features share: runtime, log, image facts, identity."""

    rt: Runtime
    log: IdfLog
    booted: "BootedImage"
    desc: AppDesc
    store: NvsStore
    identity: DeviceIdentity | None = None
    commands: CommandTable = field(default=DEFAULT_COMMANDS)
    # One network/NVS job at a time: console commands and timer tasks run on different threads.
    net_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # esp_restart() called by a task other than the console's (the OTA timer): the console loop does it.
    _restart: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def version(self) -> str:
        """The running firmware's version, as the app reports it."""
        if "app-version-hardcoded" in self.rt.defects:
            return HARDCODED_VERSION
        return self.desc.version

    def request_restart(self, reason: str) -> None:
        """Ask for a software reset from a background task; :meth:`restart_pending` reports it."""
        self._restart.append(reason)

    def restart_pending(self) -> str | None:
        """The reason of a restart a background task asked for, if any."""
        return self._restart[0] if self._restart else None

    def commit_nonce(self, nonce: int) -> None:
        """Persist a new nonce (NVS first: a crash after this never reuses it)."""
        self.store.commit_nonce(nonce)
        if self.identity is not None:
            self.identity = replace(self.identity, nonce=nonce)


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


def start(rt: Runtime, booted: "BootedImage", commands: CommandTable = DEFAULT_COMMANDS) -> Device:
    """Run the app's start-up up to the console: app_init lines, version banner, NVS load."""
    log = IdfLog(rt)
    try:
        desc = find_app_desc(booted.app_image)
    except ValueError as exc:
        _panic(rt, log, f"image at 0x{booted.slot_offset:x} has no valid esp_app_desc_t: {exc}")
    _app_init(log, desc)
    device = Device(rt, log, booted, desc, NvsStore(rt), commands=commands)
    log.i("ecowatt", f"Firmware Version: {device.version}")
    identity, problems = device.store.load()
    for problem in problems:
        log.w("nvs", problem)
    if identity is None:
        log.w("nvs", "no device identity provisioned")
    else:
        device.identity = identity
        log.i("nvs", f"Device ID: {identity.device_id}")
        log.i("security", f"Nonce loaded from NVS: {identity.nonce}")
    return device


def run_app(rt: Runtime, booted: "BootedImage") -> None:
    """The app: start up, settle an OTA update it booted into or out of (self-test, confirm, report),
    then serve the console until reset (``Reboot``/``Halted``); the periodic upload and OTA tasks
    run alongside and are stopped when the app ends."""
    device = start(rt, booted)
    check_update_outcome(device)
    with UploadTimer.from_nvs(device), OtaTimer.from_nvs(device):
        serve(device)
