"""hil.board: the bench's boards — inventory (URLs, boards file, USB detection), cross-process
locks, serial transports (with the fast RFC2217 client), reset/power drivers, and Board."""

from __future__ import annotations

from typing import TYPE_CHECKING

# eager (and light): the function `inventory` must shadow the submodule of that name
from hil.board.inventory import USB_BRIDGES, InventoryError, detect, from_urls, inventory, load_boards_file
from hil.lazy import lazy_exports

if TYPE_CHECKING:
    from hil.board.board import Board, BoardError
    from hil.board.drivers import CommandPowerDriver, PowerCommandError, PowerDriver, ResetDriver, SerialLinesReset
    from hil.board.lock import DEFAULT_LOCK_DIR, BoardBusy, BoardLock
    from hil.board.spec import CAPABILITIES, KNOWN_CHIPS, BoardSpec
    from hil.board.transport import FastRFC2217Serial, open_port

# imported on first use: the pytest plugin reads hil.board.spec and .options in every run (no esptool)
__getattr__ = lazy_exports(
    __name__,
    {
        "Board": "hil.board.board",
        "BoardError": "hil.board.board",
        "CommandPowerDriver": "hil.board.drivers",
        "PowerCommandError": "hil.board.drivers",
        "PowerDriver": "hil.board.drivers",
        "ResetDriver": "hil.board.drivers",
        "SerialLinesReset": "hil.board.drivers",
        "DEFAULT_LOCK_DIR": "hil.board.lock",
        "BoardBusy": "hil.board.lock",
        "BoardLock": "hil.board.lock",
        "CAPABILITIES": "hil.board.spec",
        "KNOWN_CHIPS": "hil.board.spec",
        "BoardSpec": "hil.board.spec",
        "FastRFC2217Serial": "hil.board.transport",
        "open_port": "hil.board.transport",
    },
)

__all__ = [
    "CAPABILITIES",
    "DEFAULT_LOCK_DIR",
    "KNOWN_CHIPS",
    "USB_BRIDGES",
    "Board",
    "BoardBusy",
    "BoardError",
    "BoardLock",
    "BoardSpec",
    "CommandPowerDriver",
    "FastRFC2217Serial",
    "InventoryError",
    "PowerCommandError",
    "PowerDriver",
    "ResetDriver",
    "SerialLinesReset",
    "detect",
    "from_urls",
    "inventory",
    "load_boards_file",
    "open_port",
]
