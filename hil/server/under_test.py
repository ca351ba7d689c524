"""The server under test as a scenario sees it: the built-in reference server (fresh database per
test, its storage and event log readable) or a team's own server (``--hil-server-url``), and the
factory that starts built-in servers for one test and stops them afterwards.

Requests only the built-in server can serve (its database, another configuration) skip the test
against an external server, saying why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest

from hil.protocol.upload import MAX_BODY_BYTES
from hil.server.config import DEFAULT_RATE_LIMIT, DeviceKeys, ServerConfig
from hil.server.handle import ServerHandle
from hil.server.state import ServerState
from hil.server.storage import ALL
from hil.server.tls import CertPair, TestPki
from hil.wire.profile import WireProfile, default_profile

ADMIN_TOKEN = "hil-fixture-admin-token"  # TEST ONLY: in-process servers on the bench network
Tls = Literal["off", "on", "mitm"]


@dataclass
class ServerUnderTest:
    """One server as the test sees it: where it is, what CA the board must trust, and (built-in
    server only) its database and event log."""

    url: str
    ca_pem: str
    handle: ServerHandle | None = None
    description: str = ""

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the board connects to."""
        parts = urlsplit(self.url)
        assert parts.hostname is not None
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def builtin(self) -> bool:
        """True for the built-in reference server, whose database and event log the test can read."""
        return self.handle is not None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    def url_via(self, address: tuple[str, int]) -> str:
        """This server's URL when reached at *address* (a capture relay in front of it)."""
        host, port = address
        host = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{host}:{port}"

    @property
    def state(self) -> ServerState:
        """The built-in server's storage and config; skips the test against an external server."""
        if self.handle is None:
            pytest.skip(
                f"needs the built-in server's database and event log; the server under test is "
                f"{self.url} (--hil-server-url)"
            )
        return self.handle.state

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Security events recorded so far (``device_id=``, ``code=``)."""
        return self.state.storage.events(**{"limit": ALL, **filters})

    def readings(self, device_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored sample, oldest first."""
        return self.state.storage.readings(device_id, limit=ALL)

    def last_nonce(self, device_id: str) -> int | None:
        """The last accepted nonce of *device_id* (None before its first accepted upload)."""
        rows = [d for d in self.state.storage.devices() if d["device_id"] == device_id]
        return rows[0]["last_nonce"] if rows else None

    def restart(self) -> None:
        """Stop and start the built-in server on the same port and database (state must persist)."""
        handle = self.handle
        if handle is None:
            pytest.skip(f"restarting the server needs the built-in server, not {self.url}")
        handle.stop()
        self.handle = ServerHandle(
            handle.config,
            host=handle.host,
            port=self.address[1],
            defects=handle.defects,
            tls_cert=handle.tls_cert,
            tls_key=handle.tls_key,
            responses=handle.state.responses,  # one answer log across the restart, like its database
        ).start()


@dataclass
class ServerFactory:
    """Starts built-in servers for one test (each on its own database) and stops them afterwards;
    hands out the external server when ``--hil-server-url`` is set."""

    workdir: Path
    devices: dict[str, DeviceKeys]
    pki: TestPki
    defects: tuple[str, ...] = ()
    external: ServerUnderTest | None = None
    host: str = "127.0.0.1"  # where built-in servers listen: an address the board reaches this host at
    wire: WireProfile = field(default_factory=default_profile)  # the format built-in servers speak
    _started: list[ServerUnderTest] = field(default_factory=list)

    def start(
        self,
        *,
        tls: Tls | CertPair = "off",
        rate_limit: int = DEFAULT_RATE_LIMIT,
        firmware_dir: Path | None = None,
        attacker_key: Path | None = None,
        fota_signing_key: Path | None = None,
        db_name: str | None = None,
        external_as_is: bool = False,
        clock: Callable[[], float] | None = None,
        ca_cert: Path | None = None,
    ) -> ServerUnderTest:
        """A running server. ``tls="mitm"`` presents a certificate from a CA the board does not trust;
        ``firmware_dir`` holds the FOTA packages it offers (``hil.images.fota_build.firmware_dir_with``);
        ``attacker_key`` signs manifests under the ``wrong_signing_key`` fault; ``fota_signing_key`` is the
        key the packages were built with (``ecowatt-fw134`` signs with it when it serves); ``clock`` is the
        built-in server's clock (a :class:`hil.server.clock.ManualClock` moves its rate-limit window);
        ``tls=CertPair(...)`` presents that chain instead (an adversarial certificate, :mod:`hil.adversarial`),
        ``ca_cert`` the CA a board is provisioned with to judge it (default: the session PKI's).
        Anything but the defaults needs the built-in server (the test skips against an external one),
        unless *external_as_is*: the scenario then runs against the external server as it is configured."""
        if self.external is not None and external_as_is:
            return self.external
        if self.external is not None:
            # the external server is what it is: only a request it already satisfies can be served
            tls_ok = tls == "off" or (tls == "on" and self.external.scheme == "https")
            as_is = firmware_dir is None and attacker_key is None and clock is None and ca_cert is None
            if not (tls_ok and rate_limit == DEFAULT_RATE_LIMIT and as_is):
                pytest.skip(
                    f"needs a built-in server configured with tls={tls}, rate_limit={rate_limit}, "
                    f"firmware_dir={firmware_dir}; the server under test is {self.external.url}"
                )
            return self.external
        db = self.workdir / (db_name or f"server-{len(self._started)}.sqlite3")
        config = ServerConfig(
            db_path=db,
            devices=self.devices,
            admin_token=ADMIN_TOKEN,
            rate_limit=rate_limit,
            firmware_dir=firmware_dir,
            attacker_key=attacker_key,
            fota_signing_key=fota_signing_key,
            wire=self.wire,
            max_body_bytes=self.wire.limits.body_bytes or MAX_BODY_BYTES,
            clock=clock or time.monotonic,
        )
        shipped = {"off": None, "on": self.pki.server, "mitm": self.pki.mitm_server}
        pair = tls if isinstance(tls, CertPair) else shipped[tls]
        handle = ServerHandle(
            config,
            host=self.host,
            defects=self.defects,
            tls_cert=pair.cert if pair else None,
            tls_key=pair.key if pair else None,
        ).start()
        server = ServerUnderTest(
            handle.url,
            (ca_cert or self.pki.ca_cert).read_text(encoding="ascii"),
            handle,
            description=f"built-in reference server ({self.wire.name}, "
            f"tls {tls if isinstance(tls, str) else tls.cert.name}, "
            f"defects: {', '.join(self.defects) or 'none'})",
        )
        self._started.append(server)
        return server

    @property
    def started(self) -> list[ServerUnderTest]:
        """The built-in servers this factory started for the test, in order."""
        return list(self._started)

    def close(self) -> None:
        """Stop every server this factory started."""
        for server in self._started:
            if server.handle is not None:
                server.handle.stop()
        self._started.clear()
