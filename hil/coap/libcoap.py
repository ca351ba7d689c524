"""libcoap's own tools as subprocesses: ``coap-client`` (what the SOP runs against a board, and what a
reviewer trusts) and ``coap-server`` (a CoAPS peer nobody here wrote, for the client's interop tests).

Debian's ``libcoap3-bin`` installs them per TLS library (``coap-client-openssl``, ``-gnutls``,
``-notls``, no plain ``coap-client``); :func:`find_binary` takes the first there is. The PSK goes on
the command line as the SOP does, but every command, warning and log line this module hands back has
it replaced by ``***``.
"""

from __future__ import annotations

import math
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from hil.coap.endpoint import CoapEndpoint
from hil.coap.errors import CoapError, CoapTimeout, LibcoapNotFound

FLAVOURS = ("", "openssl", "gnutls", "mbedtls", "tinydtls", "notls")  # "" is a build's plain name
REDACTED = "***"
SERVER_START_TIMEOUT = 10.0
SERVER_STOP_TIMEOUT = 5.0
START_ATTEMPTS = 3  # another process may take the free port pair between the probe and coap-server's bind
# libcoap's coap-server serves these without configuration (man coap-server)
SERVER_RESOURCES = ("time", "async", "example_data")
# libcoap logs to stdout, among the payload: "Dec 01 12:30:11.819 ERR  cannot send CoAP pdu"
_LOG_LINE = re.compile(
    r"^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d(?:\.\d+)? (?:EMRG|ALRT|CRIT|ERR|WARN|NOTE|INFO|DEBG|OSC)\b"
)


def find_binary(tool: str, flavour: str | None = None) -> str:
    """Path of libcoap's ``coap-<tool>`` (``client`` or ``server``): *flavour* (``openssl``, ``gnutls``
    ...) if given, else the first of :data:`FLAVOURS` on PATH that speaks DTLS."""
    names = (
        [f"coap-{tool}-{flavour}" if flavour else f"coap-{tool}"]
        if flavour is not None
        else [f"coap-{tool}-{f}" if f else f"coap-{tool}" for f in FLAVOURS if f != "notls"]
    )
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise LibcoapNotFound(
        f"none of {', '.join(names)} is on PATH: install libcoap's tools (Debian/Ubuntu: apt-get install "
        "libcoap3-bin, which .ci/install does)"
    )


def redact(text: str, key: str | bytes | None) -> str:
    """*text* with the PSK *key* replaced by ``***``."""
    if not key:
        return text
    needle = key.decode("utf-8", errors="replace") if isinstance(key, bytes) else key
    return text.replace(needle, REDACTED)


def _redacted_command(command: Sequence[str]) -> tuple[str, ...]:
    return tuple(REDACTED if i and command[i - 1] == "-k" else arg for i, arg in enumerate(command))


@dataclass(frozen=True)
class ClientResult:
    """One ``coap-client`` run: the command (key redacted), exit status, the response payload it
    printed, its warnings (stderr lines, key redacted), how long it ran."""

    command: tuple[str, ...]
    returncode: int
    payload: bytes
    warnings: tuple[str, ...]
    elapsed_s: float

    @property
    def responded(self) -> bool:
        """It exited 0 and printed a payload. A wrong PSK is no error exit for coap-client: silence,
        then warnings such as "Discarded replayed handshake packet" and an empty payload."""
        return self.returncode == 0 and bool(self.payload)


def run_client(
    url: str,
    *,
    method: str = "get",
    payload: str | None = None,
    identity: str | None = None,
    key: str | bytes | None = None,
    timeout: float = 5.0,
    binary: str | None = None,
    verbosity: int = 4,
    extra: Sequence[str] = (),
) -> ClientResult:
    """Run ``coap-client -m METHOD [-e PAYLOAD] [-u ID -k KEY] -B TIMEOUT URL``; raises
    :class:`CoapTimeout` if the process outlives its own ``-B`` bound by 5 s. ``verbosity`` 4 keeps
    libcoap's warnings (a wrong PSK's "Discarded replayed handshake packet"), separated from the payload."""
    key_text = key.decode() if isinstance(key, bytes) else key
    command = [binary or find_binary("client"), "-m", method.lower(), "-B", str(max(1, math.ceil(timeout)))]
    command += ["-v", str(verbosity)]
    if payload is not None:
        command += ["-e", payload]
    if identity is not None:
        command += ["-u", identity]
    if key_text is not None:
        command += ["-k", key_text]
    command += [*extra, url]
    shown = _redacted_command(command)
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout + 5, check=False)
    except subprocess.TimeoutExpired:
        raise CoapTimeout(f"{' '.join(shown)}: still running {timeout + 5:.0f} s later; killed") from None
    printed: list[bytes] = []
    logged: list[str] = []
    for line in done.stdout.splitlines(keepends=True):
        text = line.decode("utf-8", errors="replace")
        if _LOG_LINE.match(text):
            logged.append(text.rstrip())
        else:
            printed.append(line)
    logged += done.stderr.decode("utf-8", errors="replace").splitlines()
    return ClientResult(
        command=shown,
        returncode=done.returncode,
        payload=b"".join(printed).rstrip(b"\n"),
        warnings=tuple(redact(line, key_text) for line in logged if line.strip()),
        elapsed_s=time.monotonic() - started,
    )


def _is_free(address: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


def _free_port_pair(address: str) -> int:
    """A port P with P + 1, both free for UDP and TCP (coap-server listens on both, DTLS/TLS on P + 1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind((address, 0))
            port = first.getsockname()[1]
        if port < 65535 and _is_free(address, port) and _is_free(address, port + 1):
            return port
    raise CoapError(f"no two adjacent free ports on {address} for coap-server")


class LibcoapServer:
    """libcoap's ``coap-server`` with a PSK, on a free port pair of *address* (CoAP on ``port``, CoAPS
    on ``port + 1``): :meth:`start`, :meth:`stop` (or a ``with`` block).

    ``only_identity``: accept the key for that identity only (through coap-server's ``-i`` match file;
    every other identity is given a random key nobody knows), so a wrong identity fails as it should
    on a board; without it coap-server takes any identity that has the key."""

    def __init__(
        self,
        psk_key: str,
        *,
        hint: str = "CoAP",
        only_identity: str | None = None,
        address: str = "127.0.0.1",
        flavour: str | None = None,
        verbosity: int = 4,
    ) -> None:
        self.psk_key = psk_key
        self.hint = hint
        self.only_identity = only_identity
        self.address = address
        self.flavour = flavour
        self.verbosity = verbosity
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def secure_port(self) -> int:
        return self.port + 1

    def coap(self) -> CoapEndpoint:
        return CoapEndpoint(self.address, self.port, secure=False)

    def coaps(self, identity: str, key: str | bytes | None = None) -> CoapEndpoint:
        """Its CoAPS endpoint for *identity*, with its own key unless *key* says otherwise."""
        raw = self.psk_key if key is None else key
        return CoapEndpoint(
            self.address, self.secure_port, True, identity, raw.encode() if isinstance(raw, str) else raw
        )

    def start(self) -> LibcoapServer:
        """Start it and wait until it answers plain CoAP (``GET /time``)."""
        binary = find_binary("server", self.flavour)
        for attempt in range(1, START_ATTEMPTS + 1):
            self._launch(binary)
            if self._wait_ready():
                return self
            output = self.output()[-2000:]
            self.stop()
            if "Address already in use" not in output or attempt == START_ATTEMPTS:
                raise CoapError(
                    f"{' '.join(self._command)} did not answer CoAP on {self.address}:{self.port} within "
                    f"{SERVER_START_TIMEOUT:.0f} s; its output:\n{output}"
                )
        raise AssertionError("unreachable: the last attempt raises")

    def _launch(self, binary: str) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="hil-coap-server-")
        work = Path(self._workdir.name)
        self.port = _free_port_pair(self.address)
        default_key = self.psk_key
        command = [binary, "-A", self.address, "-p", str(self.port), "-v", str(self.verbosity), "-h", self.hint]
        if self.only_identity is not None:
            match_file = work / "identities"
            match_file.write_text(f"{self.hint},{self.only_identity},{self.psk_key}\n")
            match_file.chmod(0o600)
            default_key = secrets.token_hex(16)  # for every other identity: a key nobody has
            command += ["-i", str(match_file)]
        command += ["-k", default_key]
        self._log = work / "server.log"
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._command = _redacted_command(command)

    def _wait_ready(self) -> bool:
        """True once it answers ``GET /time``; False if it exited, failed to bind or stayed silent."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            if "cannot create UDP endpoint" in self.output():  # it lives on, serving nothing
                return False
            try:
                with self.coap().connect() as client:
                    client.get("time", timeout=min(1.0, max(0.1, deadline - time.monotonic())))
                return True
            except CoapError:
                continue  # not listening yet (ICMP unreachable) or no answer yet: ask again
        return False

    def output(self) -> str:
        """What the server logged so far (key redacted)."""
        log = getattr(self, "_log", None)
        if log is None or not log.exists():
            return ""
        text = log.read_text(encoding="utf-8", errors="replace")
        return redact(text, self.psk_key)

    def stop(self) -> None:
        """Terminate it (then kill if it lingers) and remove its files; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(SERVER_STOP_TIMEOUT)
        if self._workdir is not None:
            self._last_output = self.output()
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> LibcoapServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["SERVER_RESOURCES", "ClientResult", "LibcoapServer", "find_binary", "redact", "run_client"]
