"""``hil monitor``: a serial monitor for bench use, with ESP-IDF colours.

Keys: Ctrl-] exits, Ctrl-R hard-resets the board, a typed line is sent on Enter. Lines that carry
no colour codes are coloured by their ESP-IDF level (E red, W yellow, I green); crash lines red.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hil.board import Board

EXIT_KEY = b"\x1d"  # Ctrl-]
RESET_KEY = b"\x12"  # Ctrl-R
LEVEL_RE = re.compile(r"^([EWIDV]) \(\d+\) ")
COLOURS = {"E": "\x1b[0;31m", "W": "\x1b[0;33m", "I": "\x1b[0;32m"}
RESET = "\x1b[0m"


def colourise(raw: str, text: str, crash: bool, enabled: bool = True) -> str:
    """The line as printed: device colours kept; uncoloured ESP-IDF lines coloured by level."""
    if not enabled:
        return text
    if crash:
        return f"\x1b[1;31m{text}{RESET}"
    if raw != text:
        return raw
    match = LEVEL_RE.match(text)
    colour = COLOURS.get(match.group(1)) if match else None
    return f"{colour}{text}{RESET}" if colour else text


@contextmanager
def _raw_stdin() -> Iterator[bool]:
    """Put a terminal stdin in cbreak mode (keys arrive one by one); yields False if not a tty."""
    if not sys.stdin.isatty():
        yield False
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _keyboard(board: Board, stop: threading.Event) -> None:
    """Read keys: Ctrl-] stops, Ctrl-R resets, Enter sends the typed line."""
    line = bytearray()
    fd = sys.stdin.fileno()
    while not stop.is_set():
        key = os.read(fd, 1)
        if not key or key == EXIT_KEY:
            stop.set()
        elif key == RESET_KEY:
            board.reset()
        elif key in (b"\r", b"\n"):
            board.console.send(line.decode("utf-8", "replace"))
            line.clear()
            sys.stdout.write("\n")
        else:
            line += key
            sys.stdout.write(key.decode("utf-8", "replace"))
        sys.stdout.flush()


def _run(args: argparse.Namespace) -> int:
    from hil.board import Board, BoardSpec  # board builds on console, not the other way round
    from hil.console.lines import LineKind
    from hil.console.profile import load_profile

    spec = BoardSpec(name=args.name, port=args.port, baud=args.baud)
    stop = threading.Event()
    colour = not args.no_colour and sys.stdout.isatty()
    try:
        board = Board(spec, profile=load_profile(args.profile)).open()
    except (OSError, ValueError) as exc:
        print(f"hil monitor: {exc}", file=sys.stderr)
        return 1
    with board, _raw_stdin() as interactive:
        print(
            f"--- hil monitor on {args.port} ({'Ctrl-] exits, Ctrl-R resets' if interactive else 'Ctrl-C exits'}) ---",
            file=sys.stderr,
        )
        if interactive:
            threading.Thread(target=_keyboard, args=(board, stop), daemon=True).start()
        if args.log:
            board.console.log_to(args.log)
        if args.reset:
            board.reset()
        pos = board.console.mark()
        try:
            while not stop.is_set():
                # a short wait so a Ctrl-] is noticed promptly; lines wake it at once
                for line in board.console.follow(pos, 0.2):
                    pos = line.seq + 1
                    print(colourise(line.raw, line.text, line.kind is LineKind.CRASH, colour), flush=True)
        except KeyboardInterrupt:
            pass
    print("--- exit ---", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hil monitor``."""
    parser = subparsers.add_parser(
        "monitor", help="serial monitor with ESP-IDF colours (Ctrl-] exits)", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", required=True, metavar="URL", help="device path or rfc2217://host:port")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--name", default="board0", help="board name shown in messages")
    parser.add_argument("--reset", action="store_true", help="hard-reset the board first")
    parser.add_argument("--profile", default="ecowatt-idf", help="firmware profile (crash detection)")
    parser.add_argument("--log", metavar="FILE", help="also write timestamped lines to FILE")
    parser.add_argument("--no-colour", "--no-color", dest="no_colour", action="store_true")
    parser.set_defaults(func=_run)
