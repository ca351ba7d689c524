"""An update server as an OTA scenario sees it: a server under test holding chosen FOTA packages,
its fault injection and the status reports devices sent it; and the factory that starts them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.images.fota_build import firmware_dir_with
from hil.images.index import Index
from hil.server.under_test import ServerFactory, ServerUnderTest


@dataclass
class UpdateServer:
    """An update server as the test sees it: the server, the packages it offers, fault injection and
    the status reports devices sent it."""

    server: ServerUnderTest
    packages: dict[str, str]  # image name -> version offered

    @property
    def url(self) -> str:
        return self.server.url

    def add_fault(self, name: str, **params: Any) -> None:
        """Activate one OTA fault (``corrupt_chunk``, ``drop_connection``, ... see hil.server.ota_faults)."""
        self.server.state.storage.add_fault(name, params)

    def clear_faults(self) -> None:
        """Remove every active fault."""
        self.server.state.storage.clear_faults()

    def statuses(self, device_id: str) -> list[dict[str, Any]]:
        """Status reports of ``device_id``, oldest first."""
        return self.server.state.storage.ota_statuses(device_id=device_id)

    def status_lines(self, device_id: str) -> list[str]:
        """One readable line per status report (for evidence and assertion messages)."""
        keys = ("progress_percent", "error_code", "old_version", "rolled_back_to", "error_message")
        return [
            f"{s['status']} {s['firmware_version']}" + "".join(f" {k}={s[k]}" for k in keys if s.get(k) is not None)
            for s in self.statuses(device_id)
        ]


@dataclass
class UpdateServerFactory:
    """Starts update servers with firmware dirs of chosen packages (stopped by ``server_factory``)."""

    servers: ServerFactory
    firmware: Index
    workdir: Path
    _count: int = 0

    def start(self, *images: str, **server_options: Any) -> UpdateServer:
        """A built-in server offering the FOTA packages of ``images`` (``"app-v2"``, ``"downgrade"``...);
        its ``wrong_signing_key`` fault signs with the lab's attacker key, fw134's signatures with the FOTA key."""
        self._count += 1
        fw_dir = firmware_dir_with(self.firmware, images, self.workdir / f"firmware-{self._count}")
        server = self.servers.start(
            firmware_dir=fw_dir,
            attacker_key=self.firmware.path("attacker-key"),
            fota_signing_key=self.firmware.path("fota-signing-key"),  # ecowatt-fw134 signs when it serves
            **server_options,
        )
        return UpdateServer(server, {image: str(self.firmware.get(image).version) for image in images})
