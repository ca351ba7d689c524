"""An in-process VirtualBoard with a capturing host, and a fake firmware for boot tests."""

from __future__ import annotations

import threading

from hil.sim.board import VirtualBoard
from hil.sim.runtime import Reboot, Runtime


class Host:
    """Captures chip output; ``wait_for(text)`` blocks on a condition until it appears."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.data = bytearray()

    def __call__(self, data: bytes) -> None:
        with self._cond:
            self.data += data
            self._cond.notify_all()

    @property
    def text(self) -> str:
        with self._cond:
            return self.data.decode(errors="replace")

    def wait_for(self, needle: str, timeout: float = 5.0, count: int = 1) -> str:
        with self._cond:
            ok = self._cond.wait_for(lambda: self.data.decode(errors="replace").count(needle) >= count, timeout)
            text = self.data.decode(errors="replace")
        assert ok, f"{needle!r} (x{count}) not seen within {timeout} s; output so far:\n{text}"
        return text


class FakeFirmware:
    """Prints a line, echoes console lines; 'reboot' raises Reboot, 'crash' raises, 'cut' checkpoints;
    a read that returns no line (timeout, ``Runtime.notify``) prints 'no line'."""

    def __init__(self) -> None:
        self.boots = 0
        self.booted = threading.Event()
        self.rt: Runtime | None = None  # the runtime of the latest boot

    def __call__(self, rt: Runtime) -> None:
        self.boots += 1
        self.rt = rt
        rt.write_line(f"I ({rt.millis()}) fake: boot {self.boots} cause={rt.reset_cause.label}")
        self.booted.set()
        while True:
            line = rt.read_line(timeout=10)
            if line is None:
                rt.write_line("no line")
                continue
            if line == "reboot":
                raise Reboot()
            if line == "crash":
                raise ZeroDivisionError("division by zero in app_main")
            if line.startswith("cut"):
                for n in range(1, 4):
                    rt.checkpoint("ota.chunk_written", n=n)
                    rt.write_line(f"chunk {n} written")
            if line == "flash":
                rt.flash.write(0x9000, b"nvs")
            rt.write_line(f"echo {line}")


def make_board(tmp_path, chip: str = "esp32", **kw) -> tuple[VirtualBoard, Host, FakeFirmware]:
    firmware = FakeFirmware()
    board = VirtualBoard(chip, tmp_path / "state", firmware=firmware, strap_window=0.2, **kw)
    host = Host()
    board.uart.attach(host)
    return board, host, firmware


def classic_reset(board: VirtualBoard) -> None:
    """esptool's classic sequence as line writes (each _setRTS re-writes DTR, like esptool)."""
    board.set_lines(dtr=False)
    board.set_lines(rts=True)
    board.set_lines(dtr=False)
    board.set_lines(dtr=True)
    board.set_lines(rts=False)
    board.set_lines(dtr=True)
    # esptool waits 50 ms here; the strap window is what makes the late IO0 low count
    board.set_lines(dtr=False)


def hard_reset(board: VirtualBoard) -> None:
    board.set_lines(dtr=False)
    board.set_lines(rts=True)
    board.set_lines(rts=False)
