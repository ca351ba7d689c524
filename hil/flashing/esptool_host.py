"""Hosting esptool in-process: a clean configuration, output routed per call, every call bounded.

* Configuration: esptool reads ``ESPTOOL_*`` environment variables and an ``[esptool]`` section of
  ``esptool.cfg``/``setup.cfg``/``tox.ini`` (working directory, then user config) when its loader is
  first imported; they change timeouts and reset sequences. The variables are hidden during the
  import we trigger, and a configuration esptool did load is refused with the file's name.
* Output: esptool logs through one process-wide logger. :class:`_RoutedLog` (installed once, over
  esptool's own) sends what a *worker thread of ours* prints to that call's :class:`Sink`, and
  everything else to esptool's logger as before.
* Bounds: a device that never answers (e.g. no ``OHAI`` after the stub upload) blocks esptool
  forever. :func:`run_bounded` runs the call in a worker thread and, on timeout, calls ``abort``
  (closing the port makes the blocked read fail) and raises :class:`FlashTimeout`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from esp_pylib.logger import EspLog, EspLogBase

T = TypeVar("T")
_ESPTOOL_PREFIX = "ESPTOOL_"
_install_lock = threading.Lock()
_router: _RoutedLog | None = None  # mirrors esptool's own process-wide logger singleton


class FlashError(RuntimeError):
    """Flashing failed; the message names board, port, step and what to do."""


class FlashTimeout(FlashError):
    """An esptool step did not finish within its time bound."""


@dataclass
class Sink:
    """Where one esptool call's output goes: text lines and byte progress."""

    on_progress: Callable[[int, int], None] | None = None
    transcript: list[str] = field(default_factory=list)

    def text(self, message: str) -> None:
        """Record a line esptool printed."""
        message = message.strip()
        if message:
            self.transcript.append(message)

    def progress(self, done: int, total: int) -> None:
        """Forward esptool's progress (bytes done of total)."""
        if self.on_progress is not None:
            self.on_progress(done, total)


def clean_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) without ``ESPTOOL_*`` variables, for subprocesses."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not k.startswith(_ESPTOOL_PREFIX)}


def _import_esptool() -> Any:
    hidden = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(_ESPTOOL_PREFIX)}
    try:
        import esptool.cmds
        import esptool.config
    finally:
        os.environ.update(hidden)
    _, path = esptool.config.load_config_file()
    if path is not None:
        raise FlashError(
            f"esptool loaded an [esptool] configuration from {path}; it changes reset sequences and "
            "timeouts of every flash. Remove that section (or the file) or run from another directory"
        )
    return esptool


def esptool_module() -> Any:
    """Import esptool under the rules above and install the routed logger (once per process)."""
    global _router
    with _install_lock:
        esptool = _import_esptool()
        if _router is None:
            _router = _RoutedLog(EspLog.instance)
            EspLog.set_logger(_router)
        return esptool


class _RoutedLog(EspLogBase):
    """esptool logger that sends output of registered threads to their Sink."""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback
        self._sinks: dict[int, Sink] = {}

    @contextmanager
    def route(self, sink: Sink) -> Iterator[None]:
        ident = threading.get_ident()
        self._sinks[ident] = sink
        try:
            yield
        finally:
            self._sinks.pop(ident, None)

    def _sink(self) -> Sink | None:
        return self._sinks.get(threading.get_ident())

    def _text(self, method: str, *args: Any, **kwargs: Any) -> None:
        sink = self._sink()
        if sink is None:
            getattr(self._fallback, method)(*args, **kwargs)
        else:
            sink.text(" ".join(str(a) for a in args))

    def print(self, *args: Any, **kwargs: Any) -> None:
        self._text("print", *args, **kwargs)

    def err(self, *args: Any, suggestion: str | None = None) -> None:
        self._text("err", *args, suggestion=suggestion)

    def warn(self, *args: Any, suggestion: str | None = None) -> None:
        self._text("warn", *args, suggestion=suggestion)

    def note(self, *args: Any) -> None:
        self._text("note", *args)

    def hint(self, *args: Any) -> None:
        self._text("hint", *args)

    def debug(self, *args: Any) -> None:
        self._text("debug", *args)

    def stage(self, finish: bool = False) -> None:
        if self._sink() is None:
            self._fallback.stage(finish)

    def set_verbosity(self, mode: int | str) -> None:
        self._fallback.set_verbosity(mode)

    def progress_bar(
        self, cur_iter: int, total_iters: int, prefix: str = "", suffix: str = "", bar_length: int = 30
    ) -> None:
        sink = self._sink()
        if sink is None:
            self._fallback.progress_bar(cur_iter, total_iters, prefix, suffix, bar_length)
        else:
            sink.progress(cur_iter, total_iters)


def run_bounded(
    call: Callable[[], T], timeout: float, sink: Sink, abort: Callable[[], None], describe: Callable[[float], str]
) -> T:
    """Run ``call`` in a worker thread with its esptool output routed to ``sink``.

    If it does not finish within ``timeout`` s, ``abort()`` is called (it must make the call fail,
    e.g. by closing the port) and :class:`FlashTimeout` ``(describe(timeout))`` is raised.
    Exceptions of ``call`` are re-raised in the caller's thread.
    """
    esptool_module()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def worker() -> None:
        assert _router is not None
        with _router.route(sink):
            try:
                outcome["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as is
                outcome["error"] = exc
            finally:
                done.set()

    thread = threading.Thread(target=worker, name="esptool-call", daemon=True)
    thread.start()
    if not done.wait(timeout):
        abort()
        done.wait(5.0)  # let the aborted call unwind so it does not print into the next one
        raise FlashTimeout(describe(timeout))
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
