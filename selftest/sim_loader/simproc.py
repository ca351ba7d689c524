"""Helpers for the sim self-tests: run `hil sim` as a subprocess and the real esptool CLI against it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

ESPTOOL_TIMEOUT = 120


def scrubbed_env() -> dict[str, str]:
    """The environment without ESPTOOL_* variables (they change esptool's behaviour)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ESPTOOL_")}


class SimProcess:
    """`hil sim` in a child process; ``start()`` waits for the URL line, ``stop()`` sends SIGTERM."""

    def __init__(self, state_dir: Path, chip: str = "esp32", *extra: str) -> None:
        self.state_dir = Path(state_dir)
        self.args = [sys.executable, "-m", "hil.sim", "--chip", chip, "--port", "0",
                     "--state-dir", str(self.state_dir), *extra]
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self, timeout: float = 30) -> "SimProcess":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=scrubbed_env())
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                self.stop()
                raise TimeoutError(f"`hil sim` in {self.state_dir} printed no URL within {timeout} s")
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("rfc2217://"):
            err = self.stop()
            raise RuntimeError(f"`hil sim` in {self.state_dir} printed {line!r} first; stderr: {err}")
        self.url = line
        return self

    def stop(self, timeout: float = 10) -> str:
        """SIGTERM, wait, return stderr; raises if the process had to be killed."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError(f"`hil sim` in {self.state_dir} ignored SIGTERM for {timeout} s") from None
        return err.decode(errors="replace")

    def __enter__(self) -> "SimProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def esptool(url: str, *args: str, cwd: Path, timeout: float = ESPTOOL_TIMEOUT) -> subprocess.CompletedProcess:
    """Run the unmodified esptool CLI on ``url`` (plain pyserial RFC2217 client)."""
    return subprocess.run([sys.executable, "-m", "esptool", "--port", url, *args], cwd=cwd,
                          env=scrubbed_env(), capture_output=True, text=True, timeout=timeout)
