"""A board's console: a reader thread on its open serial port, per-test log files, and waits.

Waiting semantics (written once, used by every board and transport):

* Every received line gets a sequence number ``seq``. ``mark()`` returns the seq the next line will
  get. The console keeps a *cursor*: ``expect``/``expect_event`` search lines from the cursor (or from
  ``since=mark`` when given) in arrival order, and on a match move the cursor just past the matched
  line — so consecutive ``expect`` calls consume output in order and never match the same line twice.
* ``expect_absent``/``assert_no_event`` watch for ``within`` seconds and do not move the cursor.
* While waiting, a crash line (the profile's ``crash`` event) or a ROM reset banner that nobody
  announced with ``expect_reset()`` ends the wait at once with :class:`DeviceCrashed` (unless the line
  is what the wait is looking for, or ``allow_crash``/``allow_reboot`` is set).

Surviving real USB (a hub power cycle, a brownout, an ESP USB-Serial/JTAG re-enumeration):

* Given ``reopen`` (a callable returning a freshly opened port, e.g. ``open_port(spec.port, baud)``
  on the board's stable by-id path or rfc2217:// URL), a read error or a vanished port does not end
  the reader: it logs ``--- hil: port P lost (reason) ... ---``, closes the dead port and reopens
  with bounded exponential back-off (:mod:`hil.console.reconnect`), then logs
  ``--- hil: port P reopened after 1.2 s ... ---`` and reads on. Output sent while the port was away
  is lost, as on the bench. The harness lines go to the log only: no wait can match them.
* Waits go on across the gap (their timeout keeps running; a timeout says the port is away). A port
  that stays away longer than the bound is a :class:`ConsoleLost` naming board, port and what to
  check; every wait, ``send`` and ``pause`` then fails at once with it. Without ``reopen`` a read
  error is a :class:`ConsoleClosed` at once (as before).
* A partial line pending when the port dropped is written, marked, to the log it belongs to; a log
  switch (``log_to``) first writes a pending partial line, marked, to the old log, so no test's log
  starts with the end of the previous test's line.
* ``pause()`` (flashing) first waits for a lost port to come back, then parks the reader: a drop
  while paused is the flasher's problem (esptool reconnects or fails itself); the reader recovers
  only once the pause ends. The log gets :data:`LOADER_SESSION` at each pause: esptool reads the
  ROM's own ``waiting for download``, so without it a log could not tell a flashing (which may
  rewrite NVS, e.g. roll the nonce back) from a power cut.
"""

from __future__ import annotations

import collections
import copy
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import serial

from hil.console.errors import ConsoleClosed, ConsoleLost, DeviceCrashed, ExpectTimeout, UnexpectedOutput
from hil.console.lines import LineKind, LineSplitter, LogLine, strip_ansi
from hil.console.profile import FirmwareProfile, load_profile
from hil.console.reconnect import PortGap, ReconnectPolicy, Reopen, reopen_with_backoff
from hil.serial_port import SerialPort

DEFAULT_TIMEOUT = 10.0
TAIL_LINES = 40
READ_TIMEOUT = 0.1  # bounds how long pause()/close() wait for the reader to notice
PARK_TIMEOUT = 5.0
CUT_BY_LOSS = " [hil: partial line, port lost]"
CUT_BY_LOG_SWITCH = " [hil: partial line, log switched]"
LOADER_SESSION = "--- hil: port handed to the flasher (ROM loader session) ---"

Matcher = Callable[[str], "re.Match[str] | None"]


class Console:
    """Reader thread + line buffer + log file + expect for one board's serial port.

    The console does not own the port (the Board does): ``close()`` stops the reader only. With
    ``reopen`` it replaces a lost port by the one ``reopen`` returns: ``port`` is the current one.
    """

    def __init__(
        self,
        port: SerialPort,
        name: str,
        profile: FirmwareProfile | None = None,
        *,
        history: int = 10000,
        reopen: Reopen | None = None,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        self._port = port
        self._port_name = port.port or "(unnamed port)"
        self._reopen = reopen
        self._reconnect = reconnect or ReconnectPolicy()
        self._lost_since: float | None = None  # monotonic time the port was lost; None while it is open
        self._lost_reason = ""
        self.gaps: list[PortGap] = []  # every loss the console recovered from, in order
        self.name = name
        self._profile = profile
        self._lines: collections.deque[LogLine] = collections.deque(maxlen=history)
        self._next_seq = 0
        self._cursor = 0
        self._cond = threading.Condition()
        self._paused = 0
        self._parked = False
        self._stop = False
        self._failure: ConsoleClosed | None = None
        self._thread: threading.Thread | None = None
        self._splitter = LineSplitter()
        self._split_lock = threading.Lock()  # the splitter and the log a line lands in go together
        self._reset_expected_until = 0.0
        self._log_lock = threading.Lock()
        self._log: TextIO | None = None
        self._log_start = time.monotonic()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def profile(self) -> FirmwareProfile:
        """The firmware profile events are resolved through (loaded on first use)."""
        if self._profile is None:
            self._profile = load_profile()
        return self._profile

    @profile.setter
    def profile(self, profile: FirmwareProfile) -> None:
        self._profile = profile

    @property
    def port(self) -> SerialPort:
        """The port being read: the one given, or the last one ``reopen`` returned."""
        with self._cond:
            return self._port

    def start(self) -> None:
        """Start the reader thread (idempotent)."""
        if self._thread is not None:
            return
        _ = self.profile  # load before lines arrive: a bad profile fails here, not in the thread
        self._port.timeout = READ_TIMEOUT
        self._thread = threading.Thread(target=self._run, name=f"console-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the reader thread and close the log file. The port stays open (the Board owns it)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(READ_TIMEOUT * 20)
            self._thread = None
        self._flush_partial("")
        self.log_to(None)

    def __enter__(self) -> Console:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reader --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._paused and not self._stop:
                    self._parked = True
                    self._cond.notify_all()
                    self._cond.wait()
                self._parked = False
                if self._stop:
                    return
            port = self._port  # replaced only by this thread (in _recover)
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's posix port after a concurrent close()
                with self._cond:
                    if self._stop:
                        return
                    if self._paused:
                        continue  # handed over: a drop now is the flasher's to handle
                if not self._recover(str(exc) or type(exc).__name__):
                    return
                continue
            with self._split_lock:
                for raw in self._splitter.feed(data):
                    self._append(raw)

    def _recover(self, reason: str) -> bool:
        """The port failed: reopen it (True) or record why the console cannot go on (False)."""
        if self._reopen is None:
            with self._cond:
                self._failure = ConsoleClosed(f"{self.name}: serial port {self._port_name} failed: {reason}")
                self._cond.notify_all()
            return False
        lost_at = time.time()
        self._flush_partial(CUT_BY_LOSS)
        self._write_log(
            f"--- hil: port {self._port_name} lost ({reason}); reopening for up to {self._reconnect.timeout:g} s ---"
        )
        with self._cond:
            self._lost_since, self._lost_reason = time.monotonic(), reason
            dead = self._port
        try:
            dead.close()
        except (serial.SerialException, OSError, TypeError, AttributeError):
            pass  # already gone: closing only releases what is left of it
        outcome = reopen_with_backoff(self._reopen, self._reconnect, self._stop_requested)
        if outcome.port is not None:
            outcome.port.timeout = READ_TIMEOUT
            gap = PortGap(self._port_name, reason, lost_at, outcome.waited, outcome.attempts)
            with self._cond:
                self._port, self._lost_since = outcome.port, None
                self.gaps.append(gap)
                self._cond.notify_all()
            self._write_log(
                f"--- hil: port {self._port_name} lost ({reason}); reopened after {outcome.waited:.1f} s "
                f"({outcome.attempts} attempts); output sent meanwhile is lost ---"
            )
            return True
        failure = None
        if not outcome.stopped:
            failure = ConsoleLost(self.name, self._port_name, reason, outcome.waited, outcome.last_error)
            self._write_log(f"--- hil: {failure} ---")
        with self._cond:
            self._failure, self._lost_since = failure, None
            self._cond.notify_all()
        return False

    def _stop_requested(self, delay: float) -> bool:
        """Back-off wait of the reconnect loop: ``delay`` s, or less when close() asks to stop."""
        with self._cond:
            return self._cond.wait_for(lambda: self._stop, delay)

    def _flush_partial(self, mark: str) -> None:
        """Turn a pending incomplete line into a line (``mark`` appended) in the current log."""
        with self._split_lock:
            for raw in self._splitter.flush():
                if raw:  # a lone "\r" before the cut is no line
                    self._append(raw + mark)

    def _classify(self, text: str) -> LineKind:
        profile = self.profile
        if profile.crash is not None and profile.crash.search(text):
            return LineKind.CRASH
        if profile.reset_banner.search(text):
            with self._cond:
                if time.monotonic() <= self._reset_expected_until:
                    self._reset_expected_until = 0.0  # one announcement covers one banner
                    return LineKind.EXPECTED_RESET
            return LineKind.UNEXPECTED_RESET
        return LineKind.NORMAL

    def _append(self, raw: str) -> LogLine:
        text = strip_ansi(raw)
        kind = self._classify(text)
        with self._cond:
            line = LogLine(self._next_seq, time.time(), time.monotonic() - self._log_start, raw, text, kind)
            self._next_seq += 1
            self._lines.append(line)
            self._cond.notify_all()
        self._write_log(line.format())
        return line

    # -- logs ----------------------------------------------------------------------------------

    def log_to(self, path: str | Path | None) -> None:
        """Write further lines to ``path`` (appending; parent folders created), or stop logging.

        Relative timestamps in the log restart at zero: call this at the start of each test. A line
        still incomplete goes, marked, to the log it started in, not to the next one.
        """
        self._flush_partial(CUT_BY_LOG_SWITCH)
        with self._log_lock:
            if self._log is not None:
                self._log.close()
                self._log = None
            if path is not None:
                path = Path(path)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._log = path.open("a", encoding="utf-8", buffering=1)
            self._log_start = time.monotonic()

    def _write_log(self, text: str) -> None:
        with self._log_lock:
            if self._log is not None:
                self._log.write(text + "\n")

    # -- inspection ----------------------------------------------------------------------------

    def mark(self) -> int:
        """The seq the next received line will get; pass it as ``since=`` to look only at later output."""
        with self._cond:
            return self._next_seq

    @property
    def cursor(self) -> int:
        """Where the next ``expect`` without ``since`` starts searching."""
        with self._cond:
            return self._cursor

    def skip(self) -> None:
        """Move the cursor to the end: later expects ignore everything received so far."""
        with self._cond:
            self._cursor = self._next_seq

    def lines(self, since: int = 0) -> list[LogLine]:
        """Buffered lines with ``seq >= since`` (older lines may have left the bounded buffer)."""
        with self._cond:
            return self._lines_from(since)

    def tail(self, n: int = TAIL_LINES) -> list[str]:
        """The last ``n`` lines, colours stripped."""
        with self._cond:
            return [line.text for line in list(self._lines)[-n:]]

    def _lines_from(self, seq: int) -> list[LogLine]:
        if not self._lines:
            return []
        start = max(0, seq - self._lines[0].seq)
        return list(self._lines)[start:]

    # -- waiting -------------------------------------------------------------------------------

    def expect_reset(self, within: float = DEFAULT_TIMEOUT) -> None:
        """Announce a reset: the next ROM banner within ``within`` s is not an unexpected reboot."""
        with self._cond:
            self._reset_expected_until = time.monotonic() + within

    def follow(self, since: int, timeout: float) -> Iterator[LogLine]:
        """Yield lines from seq ``since`` as they arrive until ``timeout`` s have passed."""
        deadline = time.monotonic() + timeout
        pos = since
        while True:
            with self._cond:
                batch = self._lines_from(pos)
                while not batch:
                    if self._failure is not None:
                        raise copy.copy(self._failure)  # a fresh instance for each waiter's traceback
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._cond.wait(remaining)
                    batch = self._lines_from(pos)
            for line in batch:
                pos = line.seq + 1
                yield line

    def _check_fatal(self, line: LogLine, what: str, allow_crash: bool, allow_reboot: bool) -> None:
        if line.kind is LineKind.CRASH and not allow_crash:
            reason = "device crashed"
        elif line.kind is LineKind.UNEXPECTED_RESET and not allow_reboot:
            reason = "device rebooted unexpectedly"
        else:
            return
        with self._cond:
            self._cursor = max(self._cursor, line.seq + 1)  # the crash is reported once
        raise DeviceCrashed(self.name, what, line.text, reason, self.tail())

    def _wait_for(
        self,
        matcher: Matcher,
        what: str,
        timeout: float,
        since: int | None,
        allow_crash: bool,
        allow_reboot: bool,
        unless: Sequence[tuple[Matcher, str]] = (),
    ) -> re.Match[str]:
        start = self.cursor if since is None else since
        for line in self.follow(start, timeout):
            match = matcher(line.text)
            if match:
                with self._cond:
                    self._cursor = max(self._cursor, line.seq + 1)
                return match
            for stop, stop_what in unless:
                if stop(line.text):
                    raise UnexpectedOutput(self.name, f"{stop_what} while waiting for {what}", line.text, self.tail())
            self._check_fatal(line, what, allow_crash, allow_reboot)
        raise ExpectTimeout(self.name, what + self._loss_note(), timeout, self.tail())

    def _loss_note(self) -> str:
        with self._cond:
            if self._lost_since is None:
                return ""
            away = time.monotonic() - self._lost_since
            return f" (serial port {self._port_name} lost {away:.1f} s ago: {self._lost_reason}; still reopening)"

    def _watch_absent(self, matcher: Matcher, what: str, within: float, since: int | None) -> None:
        start = self.mark() if since is None else since
        for line in self.follow(start, within):
            if matcher(line.text):
                raise UnexpectedOutput(self.name, what, line.text, self.tail())
            self._check_fatal(line, f"absence of {what}", False, False)

    def expect(
        self,
        pattern: str | re.Pattern[str],
        timeout: float = DEFAULT_TIMEOUT,
        *,
        since: int | None = None,
        allow_crash: bool = False,
        allow_reboot: bool = False,
    ) -> re.Match[str]:
        """Wait for a line matching ``pattern`` (searched, colours stripped); return the match.

        Raises :class:`ExpectTimeout` (with the tail) or :class:`DeviceCrashed` (at once).
        """
        regex = re.compile(pattern)
        return self._wait_for(
            regex.search, f"line matching /{regex.pattern}/", timeout, since, allow_crash, allow_reboot
        )

    def _event_matcher(self, name: str, fields: Mapping[str, object], start: int) -> tuple[Matcher, str]:
        # an inferred event (profile [inferred]) also looks at what arrived before the wait's start
        with self._cond:
            history = [line.text for line in self._lines if line.seq < start] if name in self.profile.inferred else []
        matcher = self.profile.matcher(name, fields, history)
        shown = "".join(f" {k}={v}" for k, v in fields.items())
        return matcher, f"event {name}{shown} ({self.profile.describe(name)}, profile {self.profile.name})"

    def expect_event(
        self,
        name: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        since: int | None = None,
        allow_crash: bool = False,
        allow_reboot: bool = False,
        unless: Sequence[str] = (),
        **fields: object,
    ) -> re.Match[str]:
        """Wait for the profile's event ``name`` whose named fields equal ``fields`` (as strings).

        ``unless`` names events that settle the question the other way: if one of them arrives
        first the wait fails at once (``UnexpectedOutput``) instead of running into the timeout,
        e.g. ``expect_event("boot.refused", unless=["boot.validated"])``.
        """
        start = self.cursor if since is None else since
        matcher, what = self._event_matcher(name, fields, start)
        stops = [self._event_matcher(other, {}, start) for other in unless]
        # the crash / reset events are what the test waits for here, not a failure
        allow_crash = allow_crash or name == "crash"
        allow_reboot = allow_reboot or name == "rom.reset"
        return self._wait_for(matcher, what, timeout, start, allow_crash, allow_reboot, stops)

    def expect_absent(self, pattern: str | re.Pattern[str], within: float, *, since: int | None = None) -> None:
        """Assert no line matches ``pattern`` for ``within`` seconds (from ``since``, default: now)."""
        regex = re.compile(pattern)
        self._watch_absent(regex.search, f"line matching /{regex.pattern}/", within, since)

    def assert_no_event(self, name: str, within: float, *, since: int | None = None, **fields: object) -> None:
        """Assert event ``name`` (with ``fields``) does not appear for ``within`` seconds."""
        start = self.mark() if since is None else since
        matcher, what = self._event_matcher(name, fields, start)
        self._watch_absent(matcher, what, within, start)

    # -- writing and handing over --------------------------------------------------------------

    def send(self, line: str) -> None:
        """Send one console command (``\\n``-terminated); the command is recorded in the log."""
        port = self.connected_port()
        self._write_log(f"{'':>28}>>> {line}")
        port.write(line.encode("utf-8") + b"\n")
        port.flush()

    def connected_port(self) -> SerialPort:
        """The open port, once a lost one is back (waits up to the reconnect bound); raises the
        console's failure (:class:`ConsoleLost`) if it is not coming back."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._lost_since is None or self._failure is not None or self._stop,
                self._reconnect.timeout + READ_TIMEOUT * 20,
            )
            if self._failure is not None:
                raise copy.copy(self._failure)
            return self._port

    @contextmanager
    def pause(self) -> Iterator[SerialPort]:
        """Park the reader and yield the port (for esptool); the reader resumes on exit. A lost port
        is waited for first (:class:`ConsoleLost` if it does not come back)."""
        self.connected_port()
        with self._cond:
            self._paused += 1
            self._cond.notify_all()
            reading = self._thread is not None and self._thread.is_alive()
            if reading and not self._cond.wait_for(lambda: self._parked, PARK_TIMEOUT):
                self._paused -= 1
                raise ConsoleClosed(f"{self.name}: console reader did not pause within {PARK_TIMEOUT} s")
            port = self._port
        self._flush_partial("")
        self._write_log(LOADER_SESSION)
        try:
            yield port
        finally:
            with self._cond:
                self._paused -= 1
                if not self._paused and port.is_open:
                    port.timeout = READ_TIMEOUT  # esptool leaves its own timeout behind
                self._cond.notify_all()
