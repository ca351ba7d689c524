"""The `hil` command. Each subcommand lives with the concept it serves and registers itself here.

A subcommand module exposes ``register(subparsers) -> None``; the parser it adds sets
``func=callable(args) -> int``. Subcommand modules import their area's heavy parts inside ``func``,
so ``hil --help`` stays cheap; a module that fails to import is an error, never a missing subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# (module, why it is a separate module) — order is the order shown in --help.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "hil.sim.cli",  # hil sim: serve a virtual ESP32 over RFC2217
    "hil.images.cli",  # hil images build|fota: signed images, variants, NVS, keys, index.json
    "hil.board.cli",  # hil boards: list configured / detected boards
    "hil.flashing.cli",  # hil flash: flash artifacts from the index
    "hil.console.cli",  # hil monitor: serial monitor with ESP-IDF colours
    "hil.server.cli",  # hil server: the reference EcoWatt server
    "hil.wire.cli",  # hil wire list|show|classify: the wire profiles
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(prog="hil", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hil` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
