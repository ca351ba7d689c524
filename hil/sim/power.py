"""The virtual board's power switch: armed power-cut triggers, the control socket, and its client.

Control socket: a Unix socket ``<state-dir>/control.sock`` speaking line-delimited JSON, one reply
line per request line. Requests:

- ``{"op":"status"}`` → power state, mode, chip, MAC, URL, armed triggers, cut count
- ``{"op":"power","on":false}`` / ``{"op":"power","on":true}``
- ``{"op":"reset"}`` → pulse EN (a reset button press)
- ``{"op":"cut_when","event":"ota.chunk_written","fields":{"n":3},"restore":true}`` → arm a one-shot
  trigger: when firmware reaches that checkpoint with those fields, power goes off (and comes back
  at once if ``restore``)
- ``{"op":"disarm"}`` → drop all armed triggers
- ``{"op":"wait_cut","count":1,"timeout":5}`` → block until at least ``count`` cuts happened
- ``{"op":"coverage_context","test":"tests/x.py::test_y|board"}`` → label the lines the board runs
  from now on with that test (only in a measured board: :mod:`hil.sim.measure`)

Every reply has ``"ok"``; failures carry ``"error"`` saying what was wrong.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

CONTROL_SOCKET = "control.sock"


@dataclass(frozen=True)
class CutTrigger:
    """Cut power when checkpoint ``event`` is reached with (at least) these ``fields``."""

    event: str
    fields: dict[str, Any] = field(default_factory=dict)
    restore: bool = False

    def matches(self, event: str, fields: dict[str, Any]) -> bool:
        """True if ``event`` is ours and every field we name has the same value (compared as JSON)."""
        if event != self.event:
            return False
        return all(k in fields and _jsonish(fields[k]) == _jsonish(v) for k, v in self.fields.items())


def _jsonish(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class PowerTriggers:
    """Armed one-shot triggers and the history of cuts; thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: list[CutTrigger] = []
        self.cuts: list[dict[str, Any]] = []

    def arm(self, trigger: CutTrigger) -> None:
        with self._cond:
            self._armed.append(trigger)

    def disarm(self) -> None:
        with self._cond:
            self._armed.clear()

    @property
    def armed(self) -> list[CutTrigger]:
        with self._cond:
            return list(self._armed)

    def fire(self, event: str, fields: dict[str, Any]) -> CutTrigger | None:
        """If an armed trigger matches, remove it, record the cut and return it."""
        with self._cond:
            for trigger in self._armed:
                if trigger.matches(event, fields):
                    self._armed.remove(trigger)
                    self.cuts.append({"event": event, "fields": _jsonish(fields)})
                    self._cond.notify_all()
                    return trigger
        return None

    def wait_cuts(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` cuts happened; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.cuts) >= count, timeout)


class PoweredBoard(Protocol):
    """What the control server needs from the board."""

    triggers: PowerTriggers

    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def press_reset(self) -> None: ...
    def status(self) -> dict[str, Any]: ...


class ControlServer:
    """Serves the control socket of one board; ``start()`` binds, ``close()`` stops and unlinks."""

    def __init__(self, board: PoweredBoard, path: Path) -> None:
        self.board = board
        self.path = Path(path)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> ControlServer:
        if len(os.fsencode(self.path)) >= 104:
            raise ValueError(
                f"control socket path {self.path} is too long for a Unix socket "
                "(max ~100 bytes): use a shorter --state-dir"
            )
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # left over from a killed run; the state dir belongs to this board
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        sock.listen(8)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name=f"control:{self.path}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            _shutdown(sock)  # wakes the blocked accept() (close alone does not on Linux)
            sock.close()
        with self._lock:
            for client in list(self._clients):
                _shutdown(client)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.path.exists():
            self.path.unlink()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        workers: list[threading.Thread] = []
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                break  # closed by close()
            with self._lock:
                self._clients.add(conn)
            worker = threading.Thread(target=self._serve, args=(conn,), name="control-client", daemon=True)
            worker.start()
            workers.append(worker)
        for worker in workers:
            worker.join(timeout=5)

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rwb") as stream:
                for raw in stream:
                    reply = self.handle_line(raw)
                    stream.write(json.dumps(reply).encode() + b"\n")
                    stream.flush()
        except OSError:
            pass  # client went away mid-reply
        finally:
            with self._lock:
                self._clients.discard(conn)

    def handle_line(self, raw: bytes) -> dict[str, Any]:
        """Execute one JSON request line and return the reply object."""
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                raise ValueError("request must be a JSON object")
            return {"ok": True, **self._dispatch(request)}
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": f"bad control request {raw[:200]!r}: {exc}"}

    def _dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        board = self.board
        if op == "status":
            return board.status()
        if op == "power":
            board.power_on() if bool(req["on"]) else board.power_off()
            return board.status()
        if op == "reset":
            board.press_reset()
            return board.status()
        if op == "cut_when":
            fields = req.get("fields") or {}
            if not isinstance(req["event"], str) or not isinstance(fields, dict):
                raise TypeError("cut_when needs a string 'event' and an object 'fields'")
            board.triggers.arm(CutTrigger(req["event"], fields, bool(req.get("restore", False))))
            return board.status()
        if op == "disarm":
            board.triggers.disarm()
            return board.status()
        if op == "wait_cut":
            reached = board.triggers.wait_cuts(int(req.get("count", 1)), float(req.get("timeout", 10)))
            return {"reached": reached, "cuts": list(board.triggers.cuts)}
        if op == "coverage_context":
            from hil.sim.measure import switch_context

            return switch_context(str(req["test"]))
        raise ValueError(
            f"unknown op {op!r}; expected status, power, reset, cut_when, disarm, wait_cut, coverage_context"
        )


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer


class PowerSwitchError(RuntimeError):
    """The board refused a control request or could not be reached."""


class PowerSwitch:
    """Client of a board's control socket, for fixtures. One short connection per request."""

    def __init__(self, socket_path: Path | str, timeout: float = 10.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def request(self, op: str, *, socket_timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """Send one request, return the reply; raises ``PowerSwitchError`` on failure."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(socket_timeout if socket_timeout is not None else self.timeout)
                sock.connect(str(self.socket_path))
                sock.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
                with sock.makefile("rb") as stream:
                    line = stream.readline()
        except OSError as exc:
            raise PowerSwitchError(
                f"virtual board control socket {self.socket_path}: {exc} (is `hil sim` running with this --state-dir?)"
            ) from exc
        if not line:
            raise PowerSwitchError(f"virtual board control socket {self.socket_path} closed without a reply")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise PowerSwitchError(f"virtual board {self.socket_path}: {reply.get('error')}")
        return reply

    def status(self) -> dict[str, Any]:
        """Power state, mode, chip, MAC, URL, armed triggers and cut history."""
        return self.request("status")

    def off(self) -> dict[str, Any]:
        """Switch power off (the chip stops; output and input are lost)."""
        return self.request("power", on=False)

    def on(self) -> dict[str, Any]:
        """Switch power on (POWERON reset; boots from flash unless IO0 is held low)."""
        return self.request("power", on=True)

    def cycle(self) -> dict[str, Any]:
        """Off then on."""
        self.off()
        return self.on()

    def reset(self) -> dict[str, Any]:
        """Pulse EN like the reset button."""
        return self.request("reset")

    def cut_when(self, event: str, fields: dict[str, Any] | None = None, restore: bool = False) -> dict[str, Any]:
        """Arm a one-shot power cut at firmware checkpoint ``event`` with matching ``fields``."""
        return self.request("cut_when", event=event, fields=fields or {}, restore=restore)

    def disarm(self) -> dict[str, Any]:
        """Drop all armed triggers."""
        return self.request("disarm")

    def cut_count(self) -> int:
        """Cuts that happened since the board started."""
        return len(self.status()["cuts"])

    def wait_cut(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``count`` cuts happened in total; False on timeout."""
        reply = self.request("wait_cut", socket_timeout=timeout + 5, count=count, timeout=timeout)
        return bool(reply["reached"])


def trigger_dicts(triggers: list[CutTrigger]) -> list[dict[str, Any]]:
    """Triggers as JSON-ready dicts (for status replies)."""
    return [asdict(t) for t in triggers]
