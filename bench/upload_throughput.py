"""Upload throughput: sustained valid uploads/s against the reference server on loopback, p50/p99 latency.

N client threads, each its own registered device with increasing nonces, POST pre-built valid packets
(so the figure is the server's, not the client's packet building) over real sockets to a ServerHandle
(werkzeug threaded server, SQLite WAL) with rate limiting off. Each run is bounded in uploads and time;
the median run is reported. Every reply must be accepted, otherwise the run counts as failed. With
several ``--wire-profile`` the server is benchmarked in each format, side by side, with each
median's ratio to the first profile's (the baseline).

    python bench/upload_throughput.py [--threads 4] [--runs 3] [--seconds 2] [--max-uploads 4000]
                                      [--encrypted] [--tls] [--wire-profile ecowatt-api --wire-profile ecowatt-fw134]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import ssl
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from hil.protocol import Reading, Readings
from hil.server import ServerConfig, ServerHandle, devices_from_entries
from hil.server.tls import generate_test_pki
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile, load_profile


@dataclass
class RunResult:
    """One bounded run: accepted uploads, wall time, per-request latencies, failures."""

    ok: int = 0
    started: float = 0.0
    deadline: float = 0.0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def bench_devices(count: int) -> dict:
    """*count* TEST ONLY devices with deterministic keys."""
    return devices_from_entries([{"device_id": f"EW-B{i:03d}", "hmac_key": f"{i + 1:02x}" * 32,
                                  "aes_key": f"{i + 101:02x}" * 16} for i in range(count)])


def build_bodies(wire: WireProfile, keys, nonces: itertools.count, count: int,
                 encrypted: bool) -> tuple[str, list[bytes]]:
    """The upload path and *count* valid wire bodies for one device (10 registers each, like the firmware)."""
    regs = ("Vac1", "Iac1", "Fac1", "Vpv1", "Vpv2", "Ipv1", "Ipv2", "Temp", "Pow", "Pac")
    readings = Readings(keys.device_id, int(time.time()), tuple(Reading(r, 100.0 + i) for i, r in enumerate(regs)))
    return wire.upload_path(keys.device_id), [
        wire.body(wire.build(readings, nonce=next(nonces), hmac_key=keys.hmac_key,
                             aes_key=keys.aes_key if encrypted else None)) for _ in range(count)]


def client_loop(url: str, wire: WireProfile, path: str, bodies: list[bytes], context: ssl.SSLContext | None,
                result: RunResult, lock: threading.Lock, start: threading.Barrier) -> None:
    """Send *bodies* one by one until done or the run's deadline; record latencies and failures."""
    parts = urlsplit(url)
    start.wait(timeout=30)
    for body in bodies:
        if time.perf_counter() >= result.deadline:
            break
        t0 = time.perf_counter()
        conn = (http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10, context=context) if context
                else http.client.HTTPConnection(parts.hostname, parts.port, timeout=10))
        try:
            conn.request(wire.upload_method, path, body=body, headers={"Content-Type": wire.content_type})
            reply = conn.getresponse()
            verdict = wire.classify(reply.status, reply.read())
            failure = None if verdict.outcome is Outcome.ACCEPTED else verdict.describe()
        except OSError as exc:
            failure = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        elapsed = time.perf_counter() - t0
        with lock:
            if failure is None:
                result.ok += 1
                result.latencies.append(elapsed)
            else:
                result.failures.append(failure)


def one_run(url: str, wire: WireProfile, per_thread: list[tuple[str, list[bytes]]], seconds: float,
            context: ssl.SSLContext | None) -> RunResult:
    """All threads start together (the barrier's action starts the clock) and stop at the deadline."""
    result, lock = RunResult(), threading.Lock()

    def start_clock() -> None:
        result.started = time.perf_counter()
        result.deadline = result.started + seconds

    start = threading.Barrier(len(per_thread), action=start_clock)
    threads = [threading.Thread(target=client_loop, args=(url, wire, path, bodies, context, result, lock, start))
               for path, bodies in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - result.started
    return result


def percentile(values: list[float], pct: int) -> float:
    """The *pct*-th percentile (inclusive method), in the unit of *values*."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1] if len(values) > 1 else values[0]


def bench_profile(wire: WireProfile, args: argparse.Namespace, tmp_path: Path) -> list[RunResult]:
    """The runs of one wire profile on its own server and database."""
    devices = bench_devices(args.threads)
    nonces = {d: itertools.count(wire.nonce.start(wire.nonce.provisioned) + 1) for d in devices}
    config = ServerConfig(db_path=tmp_path / f"bench-{wire.name}.sqlite", devices=devices, admin_token="bench-only",
                          rate_limit=0, wire=wire)
    tls, context = {}, None
    if args.tls:
        pki = generate_test_pki(tmp_path / f"pki-{wire.name}")
        tls = {"tls_cert": pki.server.cert, "tls_key": pki.server.key}
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
    print(f"{wire.name}: {args.threads} client threads, {args.runs} runs of <= {args.seconds:g} s / "
          f"<= {args.max_uploads} uploads, {'encrypted' if args.encrypted else 'plain'} payloads, "
          f"{'https' if args.tls else 'http'}, rate limit off")
    runs = []
    with ServerHandle(config, **tls) as server:
        for n in range(1, args.runs + 1):
            per = max(1, args.max_uploads // args.threads)
            bodies = [build_bodies(wire, keys, nonces[d], per, args.encrypted) for d, keys in devices.items()]
            run = one_run(server.url, wire, bodies, args.seconds, context)
            runs.append(run)
            rate = run.ok / run.seconds
            lat = (f"p50 {percentile(run.latencies, 50) * 1e3:.1f} ms, p99 {percentile(run.latencies, 99) * 1e3:.1f} ms"
                   if run.latencies else "no successful uploads")
            print(f"  run {n}: {run.ok} uploads in {run.seconds:.2f} s = {rate:.0f}/s, {lat}, "
                  f"{len(run.failures)} failures{': ' + run.failures[0] if run.failures else ''}")
    return runs


def main() -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="time bound of one run")
    ap.add_argument("--max-uploads", type=int, default=4000, help="upload bound of one run (all threads)")
    ap.add_argument("--encrypted", action="store_true", help="AES-128-CBC payloads")
    ap.add_argument("--tls", action="store_true", help="HTTPS with a generated TEST ONLY CA")
    ap.add_argument("--wire-profile", action="append", metavar="NAME|PATH",
                    help="wire profile(s) to benchmark; the first is the baseline (default ecowatt-api)")
    args = ap.parse_args()

    profiles = [load_profile(name) for name in (args.wire_profile or ["ecowatt-api"])]
    table = []
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        for wire in profiles:
            runs = bench_profile(wire, args, Path(tmp))
            all_lat = [x for run in runs for x in run.latencies]
            if not all_lat or any(r.failures for r in runs):
                print(f"{wire.name}: failed runs: the figures are meaningless")
                return 1
            table.append((wire.name, statistics.median(r.ok / r.seconds for r in runs),
                          percentile(all_lat, 50) * 1e3, percentile(all_lat, 99) * 1e3))
    base = table[0][1]
    print(f"{'profile':<16} {'median uploads/s':>17} {'p50 ms':>7} {'p99 ms':>7} {'vs ' + table[0][0]:>18}")
    for name, rate, p50, p99 in table:
        print(f"{name:<16} {rate:>17.0f} {p50:>7.1f} {p99:>7.1f} {rate / base:>17.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
