"""A periodic firmware task (an ``esp_timer`` + task on a real board): the upload and OTA timers.

The task runs one job every ``period_s`` seconds on its own thread until the app ends. A job that
wants the chip restarted (``esp_restart()`` from a task other than the console's) cannot raise
``Reboot`` on its own thread — the board only sees exceptions of the CPU thread — so the task hands
the request to :meth:`Device.request_restart` and ends; the console loop carries it out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hil.sim.firmware import net
from hil.sim.firmware.device import Device
from hil.sim.runtime import Halted, Reboot

_host_log = logging.getLogger("hil.sim")  # the simulator host's log, not the UART


class PeriodicTask:
    """Runs ``job(device)`` every ``period_s`` seconds; a context manager around the console loop.

    A software reboot does not stop the runtime, so the app stops the task explicitly (``stop`` /
    ``__exit__``) rather than leaving it to the next ``Halted``. ``period_s`` 0 disables the task.
    """

    def __init__(
        self, device: Device, period_s: float, job: Callable[[Device], object], *, name: str, tag: str, what: str
    ) -> None:
        self._device = device
        self.period_s = period_s
        self._job = job
        self._name, self._tag, self._what = name, tag, what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PeriodicTask:
        """Start the task (no-op when the period is 0): logs ``Periodic <what> every N s``."""
        if self.period_s > 0 and self._thread is None:
            self._device.log.i(self._tag, f"Periodic {self._what} every {self.period_s:g} s")
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 2 * net.DEFAULT_TIMEOUT_S) -> None:
        """Stop the task and wait for a running job to end (its runtime calls raise ``Halted``)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():  # not raised: it would mask the Reboot/Halted that ended the app
                _host_log.warning(
                    "%s still running %.0f s after the app stopped (blocked in a network call?)", self._name, timeout
                )

    def _run(self) -> None:
        rt = self._device.rt
        try:
            while not self._stop.wait(self.period_s):
                rt.wait(0)  # raises Halted if the chip stopped during the period
                self._job(self._device)
        except Halted:
            return
        except Reboot as reboot:
            self._device.request_restart(reboot.reason)

    def __enter__(self) -> PeriodicTask:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
