"""A thread-safe fake runtime for the upload self-tests (the console and the timer task share it)."""

from __future__ import annotations

import collections
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from hil.images.nvs_gen import DeviceIdentity
from hil.server.config import DeviceKeys, ServerConfig
from hil.server.handle import ServerHandle
from hil.server.tls import TestPki
from hil.sim.chips import chip_spec
from hil.sim.defects import DefectSet
from hil.sim.runtime import Halted, ResetCause
from sim_boot.fakes import FakeFlash

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ThreadedRuntime:
    """Runtime for one boot: lines (plain, colours stripped) and checkpoints recorded under a lock;
    ``read_line``/``wait`` block on real time until :meth:`halt`; checkpoint hooks run inline."""

    def __init__(self, flash: FakeFlash, defects: tuple[str, ...] = (), inputs: tuple[str, ...] = ()) -> None:
        self.chip = chip_spec("esp32")
        self.flash = flash
        self.defects = DefectSet(defects)
        self.reset_cause = ResetCause.POWERON
        self.net_address = "127.0.0.1"
        self.lines: list[str] = []
        self.checkpoints: list[tuple[str, dict]] = []
        self.hooks: dict[str, Callable[[dict], None]] = {}
        self.waits: list[float] = []
        self._inputs = collections.deque(inputs)
        self._stop = threading.Event()
        self._notified = False
        self._changed = threading.Condition()  # lines, inputs and halt
        self._t0 = time.monotonic()

    def halt(self) -> None:
        """EN low: every blocking call raises Halted from now on."""
        with self._changed:
            self._stop.set()
            self._changed.notify_all()

    def type_line(self, line: str) -> None:
        """The host types a console line."""
        with self._changed:
            self._inputs.append(line)
            self._changed.notify_all()

    def wait_consumed(self, timeout: float = 10.0) -> None:
        """Until the app has read every typed line (AssertionError after *timeout*)."""
        with self._changed:
            assert self._changed.wait_for(lambda: not self._inputs, timeout), f"unread input: {list(self._inputs)}"

    def write_line(self, text: str) -> None:
        if self._stop.is_set():
            raise Halted("halted")
        with self._changed:
            self.lines.append(ANSI.sub("", text))
            self._changed.notify_all()

    def read_line(self, timeout: float | None = None) -> str | None:
        with self._changed:
            self._changed.wait_for(lambda: self._inputs or self._stop.is_set() or self._notified, timeout)
            if self._stop.is_set():
                raise Halted("halted")
            if not self._inputs:
                self._notified = False
                return None
            line = self._inputs.popleft()
            self._changed.notify_all()  # wait_consumed
            return line

    def notify(self) -> None:
        """A task notification: a waiting ``read_line`` returns None at once."""
        with self._changed:
            self._notified = True
            self._changed.notify_all()

    def millis(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def wait(self, timeout: float) -> None:
        # Device time is compressed: retry delays pass at once; a halted chip never returns.
        self.waits.append(timeout)
        if self._stop.is_set():
            raise Halted("halted")

    def checkpoint(self, name: str, **fields: object) -> None:
        self.checkpoints.append((name, fields))
        hook = self.hooks.get(name)
        if hook is not None:
            hook(fields)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 10.0) -> list[re.Match[str]]:
        """Block until *count* lines match *pattern* (regex search); the matches."""
        rx = re.compile(pattern)
        with self._changed:
            ok = self._changed.wait_for(
                lambda: len([m for m in map(rx.search, self.lines) if m]) >= count, timeout)
            found = [m for m in map(rx.search, self.lines) if m]
        assert ok, f"{count} x {pattern!r} not seen within {timeout} s; lines:\n" + "\n".join(self.lines)
        return found


W = TypeVar("W")
SELFTEST_ADMIN_TOKEN = "selftest-admin"  # TEST ONLY


def start_reference_server(db: Path, identity: DeviceIdentity, pki: TestPki, tls: str | None,
                           wrap: Callable[[Any], W], firmware_dir: Path | None = None) -> tuple[ServerHandle, W]:
    """The reference server on 127.0.0.1:0 knowing ``identity``, rate limiting off, over HTTP or
    HTTPS (``tls`` = "real" or "mitm"), its WSGI app wrapped by ``wrap`` (a recorder or tamperer)."""
    pair = {"real": pki.server, "mitm": pki.mitm_server}.get(tls) if tls else None
    config = ServerConfig(db, {identity.device_id: DeviceKeys(identity.device_id, identity.hmac_key, identity.aes_key)},
                          SELFTEST_ADMIN_TOKEN, rate_limit=0, firmware_dir=firmware_dir)
    handle = ServerHandle(config, host="127.0.0.1", port=0,
                          tls_cert=pair.cert if pair else None, tls_key=pair.key if pair else None).start()
    wrapper = wrap(handle.app.wsgi_app)
    handle.app.wsgi_app = wrapper  # type: ignore[method-assign]
    return handle, wrapper
