"""Capture loss at rising packet rates, and capture start latency (figures, not pass/fail).

Sends paced UDP bursts on loopback from a private 127.x address to itself while a
:class:`hil.net.capture.Sniffer` records that address, then compares sent / written / kernel drops.
Needs CAP_NET_RAW (run as root). Every loop is bounded in count and time.

    python bench/capture_loss.py [--seconds 2] [--max-packets 100000] [--rates 1000,5000,20000,0] [--size 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from hil.net.capture import CaptureUnavailable, Sniffer

BENCH_ADDR = "127.66.0.2"
MAX_SECONDS_PER_RATE = 30.0


def send_paced(addr: str, packets: int, rate: int, size: int) -> tuple[int, float]:
    """Send *packets* datagrams at about *rate* per second (0 = as fast as possible); returns (sent, secs)."""
    pacer = threading.Event()  # never set: its wait() is an interruptible, bounded pause
    payload = b"\x00" * size
    batch = 10
    sent = 0
    t0 = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((addr, 0))
        dest = sock.getsockname()
        while sent < packets and time.monotonic() - t0 < MAX_SECONDS_PER_RATE:
            for _ in range(min(batch, packets - sent)):
                sock.sendto(payload, dest)
                sent += 1
            if rate:
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    pacer.wait(ahead)
    return sent, time.monotonic() - t0


def measure_rate(workdir: Path, packets: int, rate: int, size: int) -> dict:
    """One capture at one rate; the sender is another process (like a board), so it does not share
    the sniffer's GIL."""
    sniffer = Sniffer(workdir / f"rate{rate}.pcap", host=BENCH_ADDR).start()
    try:
        out = subprocess.run([sys.executable, __file__, "--send-only", str(packets), str(rate), str(size)],
                             capture_output=True, text=True, check=True, timeout=MAX_SECONDS_PER_RATE + 30)
        sent_text, secs_text = out.stdout.split()
        sent, secs = int(sent_text), float(secs_text)
    finally:
        t_stop = time.monotonic()
        stats = sniffer.stop()  # drains the backlog: its duration shows how far the dissector lagged
    return {"drain": time.monotonic() - t_stop, "target": rate or "max", "achieved": sent / secs if secs else 0.0, "sent": sent,
            "written": stats.packets_written, "drops": stats.kernel_drops,
            "loss": 100.0 * (sent - stats.packets_written) / sent if sent else 0.0}


def measure_start_latency(workdir: Path, repeats: int) -> list[float]:
    """Seconds from ``start()`` being called to the sniffer being ready, *repeats* times."""
    latencies = []
    for i in range(repeats):
        t0 = time.monotonic()
        sniffer = Sniffer(workdir / f"lat{i}.pcap", host=BENCH_ADDR).start()
        latencies.append(time.monotonic() - t0)
        sniffer.stop()
    return latencies


def main(argv: list[str] | None = None) -> int:
    """Print the loss table and the start latency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="sending time per paced rate")
    parser.add_argument("--max-packets", type=int, default=100_000, help="packets per rate at most (and unpaced)")
    parser.add_argument("--rates", default="1000,5000,10000,20000,50000,0", help="packets/s, 0 = unpaced")
    parser.add_argument("--size", type=int, default=200, help="UDP payload bytes")
    parser.add_argument("--latency-repeats", type=int, default=10)
    parser.add_argument("--send-only", nargs=3, type=int, metavar=("PACKETS", "RATE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.send_only:
        sent, secs = send_paced(BENCH_ADDR, *args.send_only)
        print(sent, secs)
        return 0
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        workdir = Path(tmp)
        try:
            latencies = measure_start_latency(workdir, args.latency_repeats)
        except CaptureUnavailable as exc:
            print(f"capture unavailable: {exc}", file=sys.stderr)
            return 2
        print(f"capture start latency over {len(latencies)} starts: min {min(latencies) * 1000:.1f} ms, "
              f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
        print(f"{'target pps':>10} {'achieved':>10} {'sent':>7} {'written':>8} {'k-drops':>8} {'loss %':>7} {'drain s':>8}")
        for rate in rates:
            packets = min(args.max_packets, int(rate * args.seconds)) if rate else args.max_packets
            row = measure_rate(workdir, packets, rate, args.size)
            print(f"{row['target']:>10} {row['achieved']:>10.0f} {row['sent']:>7} {row['written']:>8} "
                  f"{row['drops']:>8} {row['loss']:>7.2f} {row['drain']:>8.2f}")
    print(f"(loopback, {args.size}-byte UDP payloads, sender in its own process, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
