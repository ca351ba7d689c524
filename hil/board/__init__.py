"""hil.board: the bench's boards — inventory (URLs, boards file, USB detection), cross-process
locks, serial transports (with the fast RFC2217 client), reset/power drivers, and Board."""

from hil.board.board import Board, BoardError
from hil.board.drivers import CommandPowerDriver, PowerCommandError, PowerDriver, ResetDriver, SerialLinesReset
from hil.board.inventory import USB_BRIDGES, InventoryError, detect, from_urls, inventory, load_boards_file
from hil.board.lock import DEFAULT_LOCK_DIR, BoardBusy, BoardLock
from hil.board.spec import CAPABILITIES, KNOWN_CHIPS, BoardSpec
from hil.board.transport import FastRFC2217Serial, open_port

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
