"""Flash time of a 1 MiB image at 115200 and 921600 baud: the harness's model of a real board
(``hil.flashing.FlashTiming``: wire time of the compressed bytes + typical SPI NOR erase/program, and
the bound the harness allows) beside the measured time on the virtual board (median of N runs).

Two images: incompressible (random bytes) and typical (alternating 4 KiB blocks of random and
repetitive bytes, ~50 % compressible, like an app with its zero-filled data). Each measured run is a
Board.flash with force (connect, stub, change_baud, write, esptool's MD5 verify, esptool's hard
reset), on a virtual board started here (``hil sim``) and stopped afterwards.

    python bench/flash_time.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from hil.board import Board
from hil.board.virtual import VirtualBoardSource
from hil.flashing import FlashRegion, FlashTiming
from hil.flashing.timing import compressed_size

MIB = 1024 * 1024
OFFSET = 0x100000
BAUDS = (115200, 921600)


def images() -> dict[str, bytes]:
    """The two 1 MiB images, by name."""
    typical = bytearray()
    for i in range(0, MIB, 4096):
        typical += os.urandom(4096) if (i // 4096) % 2 == 0 else bytes([i // 4096 % 256]) * 4096
    return {"incompressible": os.urandom(MIB), "typical": bytes(typical)}


def measure(board: Board, data: bytes, runs: int) -> list[float]:
    """Seconds of ``runs`` forced writes of ``data`` (each a whole flash session)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        board.flash([FlashRegion(OFFSET, data, "1MiB")], force=True)
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per image and baud; the median is shown")
    args = parser.parse_args(argv)
    data = images()
    measured: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="hil-flash-time-") as tmp:
        source = VirtualBoardSource("bench", Path(tmp) / "board", chip="esp32")
        spec, _ = source.start()
        try:
            for baud in BAUDS:
                # 0: stay at the ROM's 115200 (the virtual board's link is TCP: the rate changes no timing)
                with Board(replace(spec, flash_baud=0 if baud == 115200 else baud)) as board:
                    board.console.log_to(Path(tmp) / f"console-{baud}.log")
                    for name, image in data.items():
                        measured[(name, baud)] = measure(board, image, args.runs)
        finally:
            source.stop()

    print(
        f"1 MiB write + MD5 verify at {OFFSET:#x}: model of a real board vs the virtual board "
        f"(median of {args.runs} run(s))"
    )
    print(f"{'image':<15}{'baud':>8}{'on wire':>10}{'wire s':>8}{'real s':>8}{'bound s':>9}{'virtual s':>11}")
    for name, image in data.items():
        sent = compressed_size(image)
        for baud in BAUDS:
            model = FlashTiming(baud)
            runs = measured[(name, baud)]
            print(
                f"{name:<15}{baud:>8}{sent:>10}{model.wire(sent):>8.1f}{model.expected(MIB, sent):>8.1f}"
                f"{model.write_bound(MIB, sent):>9.0f}{statistics.median(runs):>11.2f}"
            )
    print(
        "real s = wire time of the compressed bytes (10 bits a byte) + typical erase/program "
        "(64 KiB block erase 150 ms, 256 B page 0.5 ms); bound = wire + esptool's 40 s/MB erase/write "
        "+ 8 s/MB MD5 + 20 s margin; virtual s includes connect, stub upload and reset"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
