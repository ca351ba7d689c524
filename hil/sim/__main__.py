"""``python -m hil.sim`` = ``hil sim``, without importing the other subcommands (fast start-up)."""

import argparse
import sys

from hil.sim.cli import register


def main(argv: list[str] | None = None) -> int:
    """Parse ``hil sim`` options and serve."""
    parser = argparse.ArgumentParser(prog="python -m hil.sim")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sim", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
