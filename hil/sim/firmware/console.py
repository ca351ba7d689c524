"""The device's serial console: a command table (data), its dispatcher and the generic commands.

Commands are rows: a name (one or more words), a handler ``(device, args) -> None`` and a help
text. The app composes the table from the features' commands (``hil.sim.firmware.app``); features
plug in by adding or replacing a row (``CommandTable.with_command``), not by editing the dispatcher,
which therefore imports no feature. ``help`` is the dispatcher's own command, not a row: only the
dispatcher has the table it serves (handlers get the device, which holds no table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hil.sim.firmware.device import Device
from hil.sim.runtime import Reboot

Handler = Callable[[Device, list[str]], None]
HELP = "help"  # the dispatcher's own command
CONSOLE_KEY = "console"  # NVS ecowatt/console u8: 0 = no console commands (absent = commands served)


@dataclass(frozen=True)
class Command:
    name: str  # e.g. "status", "ota check"
    handler: Handler
    help: str


class CommandTable:
    """An immutable set of commands, looked up by the longest matching word prefix."""

    def __init__(self, commands: Iterable[Command]) -> None:
        self._by_name = {c.name: c for c in commands}

    def with_command(self, command: Command) -> CommandTable:
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


def cmd_status(device: Device, args: list[str]) -> None:
    """``status: version=.. nonce=.. server=..`` (PROTOCOL.md)."""
    ident = device.identity
    nonce = ident.nonce if ident else 0
    server = ident.server_url if ident else ""
    device.log.raw(f"status: version={device.version} nonce={nonce} server={server}")


def cmd_reboot(device: Device, args: list[str]) -> None:
    """``esp_restart()``."""
    device.log.i("console", "Restarting...")
    raise Reboot("console reboot")


def _list_commands(device: Device, commands: CommandTable) -> None:
    for name in sorted([*commands.names(), HELP]):
        device.log.raw(name)


def serve(device: Device, commands: CommandTable) -> None:
    """Read console lines forever and run them from ``commands`` (``help`` lists them). Ends by
    ``Reboot`` or ``Halted``; a restart a background task asked for (``Device.request_restart``
    notifies this task, which wakes it from the console read) is carried out at once. With NVS
    ``ecowatt/console`` = 0 the firmware has no console commands (like the public EcoWatt firmware):
    input is read and ignored, and the device acts on its timers only."""
    enabled = device.store.setting_flag(CONSOLE_KEY, default=True)
    if not enabled:
        device.log.i("console", "No console commands in this build: uploads and update checks run on timers")
    while True:
        reason = device.restart_pending()
        if reason is not None:
            raise Reboot(reason)
        line = device.rt.read_line() or ""
        words = line.split()
        if not words or not enabled:
            continue
        if words[0] == HELP:
            _list_commands(device, commands)
            continue
        found = commands.lookup(line)
        if found is None:
            device.log.e("console", f"unknown command '{words[0]}'")
            continue
        command, args = found
        command.handler(device, args)
