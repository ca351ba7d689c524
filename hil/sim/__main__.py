"""``python -m hil.sim`` = ``hil sim``, without importing the other subcommands (fast start-up)."""

import argparse
import sys

from hil.sim.measure import start_measuring, stop_measuring


def main(argv: list[str] | None = None) -> int:
    """Parse ``hil sim`` options and serve."""
    from hil.sim.cli import register  # after start_measuring: lines run at import are measured too

    parser = argparse.ArgumentParser(prog="python -m hil.sim")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sim", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    measured = start_measuring()  # only with HIL_SIM_COVERAGE set (mutation testing's test map)
    try:
        code = main()
    finally:
        stop_measuring(measured)
    sys.exit(code)
