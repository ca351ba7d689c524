"""Flash speed: 1 MiB half-compressible write+verify, three ways, median of N runs, side by side.

1. unmodified esptool CLI over plain ``rfc2217://`` (pyserial's RFC2217 client) — a subprocess
   with ESPTOOL_* variables scrubbed, run from an empty directory;
2. the harness's fast path: esptool in-process on the fast RFC2217 client (``hil.flashing``);
3. the computed time a real ESP32 would need at 921600 baud: wire time of the raw and of the
   compressed bytes (10 bits per byte on the UART) plus an erase/program estimate.

Both measured paths include connecting (reset into the loader, chip detection, stub upload) and
esptool's post-write flash-MD5 verification. Needs ``hil sim`` (started here, stopped with SIGTERM).

    python bench/flash_speed.py [--runs 3] [--offset 0x100000]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from hil.board import open_port
from hil.flashing import FlashRegion, clean_environment, flash_port

MIB = 1024 * 1024
WIRE_BAUD = 921600
# Erase/program estimate for a typical 4 MB SPI NOR (e.g. W25Q32JV datasheet typical values): the stub
# erases in 64 KiB blocks (t_BE1 ~150 ms) and programs 256-byte pages (t_PP ~0.5 ms). Counted without
# overlap with the transfer, so it is an upper bound; measured ESP32 boards land near 10 s/MB in total.
BLOCK_ERASE_S = 0.150
PAGE_PROGRAM_S = 0.0005


def half_compressible(size: int = MIB) -> bytes:
    """Alternating 4 KiB blocks of random and repetitive bytes (~50 % compressible)."""
    out = bytearray()
    for i in range(0, size, 4096):
        out += os.urandom(4096) if (i // 4096) % 2 == 0 else bytes([i // 4096 % 256]) * 4096
    return bytes(out[:size])


def start_sim(state_dir: Path) -> tuple[subprocess.Popen, str]:
    """Start a virtual board; return the process and its RFC2217 URL (its first stdout line)."""
    proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "sim", "--port", "0", "--state-dir", str(state_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("rfc2217://"):
        stop_sim(proc)
        raise SystemExit(f"`hil sim` did not print its URL (got {url!r}); is the virtual board built?")
    return proc, url


def stop_sim(proc: subprocess.Popen) -> None:
    """SIGTERM and wait (kill if it does not stop)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def time_cli(url: str, image: Path, offset: int, workdir: Path) -> float:
    """Unmodified esptool CLI (pyserial's rfc2217 client); raises with its output on failure."""
    cmd = [sys.executable, "-m", "esptool", "--port", url, "--after", "no-reset-stub",
           "write-flash", hex(offset), str(image)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=workdir, env=clean_environment(), capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0 or "Hash of data verified" not in done.stdout:
        raise SystemExit(f"esptool CLI failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def time_fast(url: str, data: bytes, offset: int) -> float:
    """In-process esptool on the fast RFC2217 client, writing unconditionally (no MD5 skip)."""
    port = open_port(url)
    try:
        t0 = time.perf_counter()
        flash_port(port, [FlashRegion(offset, data, "1MiB")], board="bench", force=True)
        return time.perf_counter() - t0
    finally:
        port.close()


def wire_estimate(data: bytes) -> dict[str, float]:
    """Seconds a real board needs at 921600 baud for ``data``."""
    compressed = len(zlib.compress(data, 9))
    byte_time = 10 / WIRE_BAUD
    erase_program = (len(data) / 65536) * BLOCK_ERASE_S + (len(data) / 256) * PAGE_PROGRAM_S
    return {"raw": len(data) * byte_time, "compressed": compressed * byte_time,
            "erase_program": erase_program, "total": compressed * byte_time + erase_program,
            "compressed_bytes": compressed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per path; the median is reported")
    parser.add_argument("--offset", type=lambda s: int(s, 0), default=0x100000)
    args = parser.parse_args(argv)

    data = half_compressible()
    wire = wire_estimate(data)
    with tempfile.TemporaryDirectory(prefix="hil-flash-speed-") as tmp:
        tmp_path = Path(tmp)
        image = tmp_path / "image.bin"
        image.write_bytes(data)
        workdir = tmp_path / "cwd"  # no esptool.cfg / setup.cfg here
        workdir.mkdir()
        proc, url = start_sim(tmp_path / "sim")
        try:
            cli = [time_cli(url, image, args.offset, workdir) for _ in range(args.runs)]
            fast = [time_fast(url, data, args.offset) for _ in range(args.runs)]
        finally:
            stop_sim(proc)

    cli_s, fast_s = statistics.median(cli), statistics.median(fast)
    print(f"1 MiB half-compressible ({wire['compressed_bytes']} B compressed), write + MD5 verify, "
          f"median of {args.runs} run(s), virtual board at {url}")
    print(f"{'path':<52}{'seconds':>9}{'vs fast':>9}")
    rows = [
        ("esptool CLI, plain rfc2217:// (pyserial client)", cli_s),
        ("hil fast path (in-process esptool, fast RFC2217)", fast_s),
        (f"real ESP32 wire time @{WIRE_BAUD}, raw bytes", wire["raw"]),
        (f"real ESP32 wire time @{WIRE_BAUD}, compressed bytes", wire["compressed"]),
        ("real ESP32 estimate: compressed wire + erase/program", wire["total"]),
    ]
    for label, seconds in rows:
        print(f"{label:<52}{seconds:>9.2f}{seconds / fast_s:>8.1f}x")
    print(f"runs: cli={[round(x, 2) for x in cli]} fast={[round(x, 2) for x in fast]}; "
          f"erase/program estimate {wire['erase_program']:.2f} s (64 KiB block erase 150 ms, 256 B page 0.5 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
