"""``hil boards``: list configured or detected boards (with chip and MAC when probed)."""

from __future__ import annotations

import argparse
import sys

from hil.board.drivers import SerialLinesReset
from hil.board.inventory import InventoryError, inventory
from hil.board.lock import BoardBusy, BoardLock
from hil.board.spec import BoardSpec
from hil.board.transport import open_port
from hil.flashing import FlashError, FlashSession

PROBE_LOCK_TIMEOUT = 5.0


def add_board_selection(parser: argparse.ArgumentParser) -> None:
    """The inventory arguments shared by bench commands (same names as the pytest options)."""
    parser.add_argument(
        "--port",
        "--hil-port",
        dest="ports",
        action="append",
        default=[],
        metavar="URL",
        help="board port: device path or rfc2217://host:port, optionally NAME=URL (repeatable)",
    )
    parser.add_argument("--boards", "--hil-boards", dest="boards_file", metavar="FILE", help="boards file (TOML)")
    parser.add_argument(
        "--lock-dir",
        "--hil-lock-dir",
        dest="lock_dir",
        metavar="DIR",
        help="directory of the board locks (default: <tmp>/hil-locks)",
    )


def _run(args: argparse.Namespace) -> int:
    try:
        specs = inventory(args.ports, args.boards_file)
    except InventoryError as exc:
        print(f"hil boards: {exc}", file=sys.stderr)
        return 2
    if not specs:
        print("no boards configured or detected (pytest would start virtual boards)")
        return 0
    rows = [("NAME", "PORT", "CHIP", "MAC", "CAPABILITIES")]
    status = 0
    for spec in specs:
        chip, mac = spec.chip, spec.mac or "-"
        if args.probe:
            try:
                chip, mac = probe(spec, args.lock_dir)
            except (FlashError, BoardBusy, OSError) as exc:
                chip, mac, status = chip, f"probe failed: {str(exc).splitlines()[0]}", 1
        rows.append((spec.name, spec.port, chip, mac, ",".join(sorted(spec.capabilities)) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    return status


def probe(spec: BoardSpec, lock_dir: str | None = None) -> tuple[str, str]:
    """Connect with esptool to read chip and MAC, then reset the board back into its app."""
    lock = BoardLock(spec.name, spec.port, lock_dir, owner="hil boards --probe")
    lock.acquire(timeout=PROBE_LOCK_TIMEOUT)  # a board in use by a test run is reported, not disturbed
    try:
        port = open_port(spec.port, spec.baud)
        try:
            session = FlashSession(port, spec.name)
            session.connect()
            if not port.is_open:
                port.open()
            SerialLinesReset(port).hard_reset()
            return session.chip, session.mac
        finally:
            port.close()
    finally:
        lock.release()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hil boards``."""
    parser = subparsers.add_parser(
        "boards", help="list configured / detected boards", description=__doc__.splitlines()[0]
    )
    add_board_selection(parser)
    parser.add_argument(
        "--probe", action="store_true", help="connect with esptool to read chip and MAC (resets each board)"
    )
    parser.set_defaults(func=_run)
