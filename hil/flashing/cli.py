"""``hil flash``: flash artifacts of the firmware index (or OFFSET=FILE pairs) onto one board."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from hil.flashing.plan import FlashRegion, plan_from, plan_from_index

DEFAULT_ARTIFACTS = ("bootloader", "nvs", "app-v1")


def build_plan(artifacts: list[str], directory: str) -> tuple[list[FlashRegion], str | None, bool]:
    """Regions for ``NAME`` (from ``directory/index.json``) and ``OFFSET=FILE`` arguments, the chip
    the index's images are built for (None: no named artifact, only files), and whether the index
    says its images are for the virtual board only (``hil images build``)."""
    raw = [a for a in artifacts if "=" in a]
    named = [a for a in artifacts if "=" not in a]
    regions: list[tuple[int, Path, str] | FlashRegion] = []
    for item in raw:
        offset, _, path = item.partition("=")
        try:
            regions.append((int(offset, 0), Path(path), Path(path).name))
        except ValueError:
            raise ValueError(f"artifact {item!r}: expected OFFSET=FILE with OFFSET like 0x1000") from None
    chip, virtual_only = None, False
    if named:
        from hil.images.index import load_index  # the index format belongs to hil.images

        index = load_index(directory)
        regions += plan_from_index(index, named)
        chip, virtual_only = index.chip, index.virtual_only
    return plan_from(regions), chip, virtual_only


class _Progress:
    """Prints one progress line per region, rewritten in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last: tuple[str, int] = ("", -1)

    def __call__(self, label: str, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if (label, percent // (1 if self.tty else 25)) == self.last:
            return
        self.last = (label, percent // (1 if self.tty else 25))
        end = "\r" if self.tty and done < total else "\n"
        self.stream.write(f"  {label}: {percent:3d}% ({done}/{total} bytes){end}")
        self.stream.flush()


def _run(args: argparse.Namespace) -> int:
    from hil.board import Board, BoardBusy, BoardError, BoardLock, BoardSpec  # board depends on flashing, not back
    from hil.flashing import FlashError

    try:
        plan, images_chip, virtual_only = build_plan(args.artifacts or list(DEFAULT_ARTIFACTS), args.dir)
    except (OSError, ValueError, KeyError) as exc:
        print(f"hil flash: {exc}", file=sys.stderr)
        return 2
    if virtual_only and not args.virtual:
        print(
            f"hil flash: the firmware index {Path(args.dir) / 'index.json'} was built by `hil images build` for "
            f"the virtual board (its apps are filler code no ESP32 runs); nothing was written to {args.port}. "
            "Give --dir with your firmware build's index.json, or --virtual if the port is a `hil sim` board",
            file=sys.stderr,
        )
        return 2
    from hil.board.reset import check_reset

    problem = check_reset(args.reset)
    if problem is not None:
        print(f"hil flash: --reset {problem}", file=sys.stderr)
        return 2
    spec = BoardSpec(name=args.name, port=args.port, reset=args.reset)
    lock = BoardLock(spec.name, spec.port, args.lock_dir, owner="hil flash")
    try:
        lock.acquire(timeout=args.lock_timeout)
        with Board(spec, flash_baud=args.baud) as board:
            report = board.flash(
                plan,
                force=args.force,
                reset=not args.no_reset,
                progress=_Progress(sys.stdout),
                images_chip=images_chip,
                images_source=f"the firmware index {Path(args.dir) / 'index.json'}",
            )
    except (BoardBusy, BoardError, FlashError, OSError) as exc:
        print(f"hil flash: {exc}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    print(report.format())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hil flash``."""
    parser = subparsers.add_parser(
        "flash", help="flash artifacts onto a board (skip-if-identical)", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", required=True, metavar="URL", help="device path or rfc2217://host:port")
    parser.add_argument("--dir", default="firmware_builds", help="directory holding index.json")
    parser.add_argument("--name", default="board0", help="board name used in messages and the lock")
    parser.add_argument(
        "--baud", type=int, default=None, help="baud rate for flashing (default: 921600; 0: stay at the ROM's 115200)"
    )
    parser.add_argument(
        "--reset",
        default="auto",
        metavar="KIND",
        help="auto, classic, unix-tight, usb-jtag, none (the chip is already in download mode) or an esptool "
        "custom sequence such as 'D0|R1|W0.1|D1|R0|W0.05|D0' (default: auto)",
    )
    parser.add_argument(
        "--virtual", action="store_true", help="the port is a virtual board (`hil sim`): accept images built for it"
    )
    parser.add_argument("--force", action="store_true", help="write every region even if its MD5 matches")
    parser.add_argument("--no-reset", action="store_true", help="leave the chip in the loader afterwards")
    parser.add_argument("--lock-dir", metavar="DIR", help="directory of the board locks")
    parser.add_argument("--lock-timeout", type=float, default=30.0, help="seconds to wait for a busy board")
    parser.add_argument(
        "artifacts",
        nargs="*",
        metavar="ARTIFACT",
        help=f"index artifact name or OFFSET=FILE (default: {' '.join(DEFAULT_ARTIFACTS)})",
    )
    parser.set_defaults(func=_run)
