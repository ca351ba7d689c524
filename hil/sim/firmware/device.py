"""The device state every firmware feature shares (the console, upload, OTA, timers).

Its own module, below the features and the app that composes them: a feature imports the state it
works on, never the app that starts it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hil.images.app_desc import AppDesc
from hil.sim.booted import BootedImage
from hil.sim.firmware.identity import NvsIdentity, NvsStore
from hil.sim.firmware.idf_log import IdfLog
from hil.sim.runtime import Runtime

HARDCODED_VERSION = "1.0.0"  # what the app-version-hardcoded defect prints


@dataclass
class Device:
    """Everything the firmware model's features share: runtime, log, image facts, identity."""

    rt: Runtime
    log: IdfLog
    booted: BootedImage
    desc: AppDesc
    store: NvsStore
    identity: NvsIdentity | None = None
    # One network/NVS job at a time: console commands and timer tasks run on different threads.
    net_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # the running CoAP service's `coap sessions` line (hil.sim.firmware.coap); None while it is not running
    coap_status: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    # esp_restart() called by a task other than the console's (the OTA timer): the console loop does it.
    _restart: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def version(self) -> str:
        """The running firmware's version, as the app reports it."""
        if "app-version-hardcoded" in self.rt.defects:
            return HARDCODED_VERSION
        return self.desc.version

    def request_restart(self, reason: str) -> None:
        """Ask for a software reset from a background task; :meth:`restart_pending` reports it, and
        the console task, woken by a task notification, carries it out."""
        self._restart.append(reason)
        self.rt.notify()

    def restart_pending(self) -> str | None:
        """The reason of a restart a background task asked for, if any."""
        return self._restart[0] if self._restart else None

    def commit_nonce(self, nonce: int) -> None:
        """Persist a new nonce (NVS first: a crash after this never reuses it)."""
        self.store.commit_nonce(nonce)
        if self.identity is not None:
            self.identity = replace(self.identity, nonce=nonce)
