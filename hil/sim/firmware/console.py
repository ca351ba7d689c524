"""The device's serial console: a command table (data) and its dispatcher.

Commands are rows: a name (one or more words), a handler ``(device, args) -> None`` and a help
text. Later features plug in by replacing a row (``CommandTable.with_command``), not by editing the
dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from hil.sim.firmware.ota import cmd_ota_check
from hil.sim.firmware.upload import cmd_upload
from hil.sim.runtime import Reboot

if TYPE_CHECKING:
    from hil.sim.firmware.app import Device

Handler = Callable[["Device", list[str]], None]
RESTART_POLL_S = 0.1  # how often the console task looks for an esp_restart() from another task


@dataclass(frozen=True)
class Command:
    name: str          # e.g. "status", "ota check"
    handler: Handler
    help: str


class CommandTable:
    """An immutable set of commands, looked up by the longest matching word prefix."""

    def __init__(self, commands: Iterable[Command]) -> None:
        self._by_name = {c.name: c for c in commands}

    def with_command(self, command: Command) -> "CommandTable":
        """A copy with ``command`` added or replacing the row of the same name."""
        return CommandTable([*self._by_name.values(), command])

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def lookup(self, line: str) -> tuple[Command, list[str]] | None:
        """The command a console line invokes and its remaining words, or ``None``."""
        words = line.split()
        for n in range(len(words), 0, -1):
            command = self._by_name.get(" ".join(words[:n]))
            if command:
                return command, words[n:]
        return None


def cmd_status(device: "Device", args: list[str]) -> None:
    """``status: version=.. nonce=.. server=..`` (PROTOCOL.md)."""
    ident = device.identity
    nonce = ident.nonce if ident else 0
    server = ident.server_url if ident else ""
    device.log.raw(f"status: version={device.version} nonce={nonce} server={server}")


def cmd_reboot(device: "Device", args: list[str]) -> None:
    """``esp_restart()``."""
    device.log.i("console", "Restarting...")
    raise Reboot("console reboot")


def cmd_help(device: "Device", args: list[str]) -> None:
    """List the commands."""
    for name in device.commands.names():
        device.log.raw(name)


DEFAULT_COMMANDS = CommandTable([
    Command("status", cmd_status, "print version, nonce and server"),
    Command("reboot", cmd_reboot, "restart the chip"),
    Command("help", cmd_help, "list commands"),
    Command("upload", cmd_upload, "run one upload cycle now"),
    Command("ota check", cmd_ota_check, "check the server for a firmware update and install it"),
])


def serve(device: "Device") -> None:
    """Read console lines forever and run them. Ends by ``Reboot`` or ``Halted``; a restart a
    background task asked for is carried out within :data:`RESTART_POLL_S`."""
    while True:
        reason = device.restart_pending()
        if reason is not None:
            raise Reboot(reason)
        line = device.rt.read_line(timeout=RESTART_POLL_S)
        if line is None or not line.strip():
            continue
        found = device.commands.lookup(line.strip())
        if found is None:
            device.log.e("console", f"unknown command '{line.strip().split()[0]}'")
            continue
        command, args = found
        command.handler(device, args)
