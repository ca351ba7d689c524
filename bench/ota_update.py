"""Time of a 1 MiB v1 → v2 OTA update on a virtual board, by phase, and of the power-cut sweep.

Runs the happy-path scenario (tests/test_ota.py::test_ota_v1_to_v2_succeeds) several times, each in
a fresh pytest process on one virtual board, and reads the phases off the console log with the
firmware profile's events: download (update offered → 100 %), verify (→ image verified), swap
(reboot → the new version runs: MCUboot's verification, the swap and the boot), confirm (→ self-test
passed and image_ok set). Then runs the power-cut sweep (``--hil-power-cut-sweep sample``; with
``--all`` also the full sweep, which takes the better part of an hour on two cores) and prints its
wall time, per-point medians and the full sweep's estimate from them.

    python bench/ota_update.py [--runs 3] [--workers 2] [--all]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from hil.console.lines import strip_ansi
from hil.console.profile import load_profile

ROOT = Path(__file__).resolve().parents[1]
HAPPY = "tests/test_ota.py::test_ota_v1_to_v2_succeeds"
SWEEP = "tests/test_ota.py::test_ota_power_cut"
# (phase, event that starts it, fields, event that ends it, fields); the log's "+seconds" column times them
PHASES = (("download", "ota.available", {}, "ota.progress", {"percent": "100"}),
          ("verify", "ota.progress", {"percent": "100"}, "ota.verified", {}),
          ("swap", "ota.rebooting", {}, "boot.version", {"version": "2.0.0"}),
          ("confirm", "boot.version", {"version": "2.0.0"}, "ota.confirmed", {}))
_LOG_LINE = re.compile(r"^\[[^]]*\] \[\+\s*([0-9.]+)\] (.*)$")


def pytest(args: list[str], out: Path, workers: int = 0) -> tuple[float, dict[str, float]]:
    """One pytest process; returns (wall seconds, {test id: seconds incl. setup/teardown})."""
    junit = out / "junit.xml"
    parallel = ["-n", str(workers)] if workers > 1 else ["-n", "0"]
    cmd = [sys.executable, "-m", "pytest", *args, "-q", *parallel, "-p", "no:cacheprovider", "-p", "no:benchmark",
           "-W", "ignore::DeprecationWarning", "--hil-virtual", f"--hil-report-dir={out}",
           f"--hil-logs-dir={out / 'logs'}", f"--junitxml={junit}", "-o", "junit_duration_report=total"]
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=4 * 3600)
    wall = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"pytest failed ({result.returncode}):\n{result.stdout[-3000:]}")
    return wall, {case.get("name", ""): float(case.get("time", 0)) for case in ET.parse(junit).iter("testcase")}


def phases(log: Path) -> dict[str, float]:
    """Seconds of each phase in one console log (the first occurrence of each boundary event)."""
    profile = load_profile()
    seen: dict[tuple[str, str], float] = {}
    for raw in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _LOG_LINE.match(raw)
        if not m:
            continue
        text = strip_ansi(m[2])
        for _, *bounds in PHASES:
            for name, fields in (bounds[0:2], bounds[2:4]):
                hit = profile.event(name).search(text)
                if hit and all(hit[k] == v for k, v in fields.items()):
                    seen.setdefault((name, str(sorted(fields.items()))), float(m[1]))
    key = lambda name, fields: seen[(name, str(sorted(fields.items())))]  # noqa: E731
    return {phase: key(e, ef) - key(s, sf) for phase, s, sf, e, ef in PHASES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="xdist workers for the sweep")
    parser.add_argument("--all", action="store_true", help="also run the full sweep (every chunk and swap step)")
    args = parser.parse_args()
    median = statistics.median
    by_phase: dict[str, list[float]] = {}
    tests: list[float] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            _, cases = pytest([HAPPY], Path(tmp))
            tests.append(sum(cases.values()))
            (log,) = Path(tmp, "logs").glob("*v1_to_v2*/*.log")
            for phase, secs in phases(log).items():
                by_phase.setdefault(phase, []).append(secs)
    print(f"1 MiB v1 -> v2 OTA update, one virtual board, median of {args.runs} runs")
    for phase, secs in by_phase.items():
        print(f"  {phase:<9} {median(secs):6.3f} s   (min {min(secs):.3f}, max {max(secs):.3f})")
    print(f"  total     {sum(median(v) for v in by_phase.values()):6.3f} s   "
          f"(whole test incl. provisioning: {median(tests):.2f} s)")
    modes = ["sample", "all"] if args.all else ["sample"]
    for mode in modes:
        with tempfile.TemporaryDirectory() as tmp:
            wall, cases = pytest([SWEEP, "--hil-power-cut-sweep", mode], Path(tmp), args.workers)
        chunk = [s for name, s in cases.items() if "cut-after-chunk" in name]
        swap = [s for name, s in cases.items() if "cut-at-swap-step" in name]
        other = [s for name, s in cases.items() if name not in chunk and name not in swap]
        print(f"power-cut sweep ({mode}): {len(cases)} points in {wall:.1f} s wall on {args.workers} workers "
              f"(sum of test times {sum(cases.values()):.1f} s)")
        print(f"  per point, median: after a chunk {median(chunk):.2f} s, in the swap {median(swap):.2f} s, "
              f"other points {median(other) if other else 0:.2f} s")
        if mode == "sample" and not args.all:
            total = _full_sweep_size()
            estimate = (total[0] * median(chunk) + total[1] * median(swap) + sum(other)) / max(args.workers, 1)
            print(f"  full sweep ({total[0]} chunks, {total[1]} swap steps) estimated from these: "
                  f"{estimate / 60:.1f} min wall on {args.workers} workers (run with --all to measure)")
    return 0


def _full_sweep_size() -> tuple[int, int]:
    """(chunk points, swap points) of the full sweep of the built images."""
    from hil.images.index import load_index
    from hil.ota.sweep import sweep_points  # the same table the tests parametrize with

    points = sweep_points(load_index(ROOT / "firmware_builds"), "all", 0)
    return (sum(p.checkpoint == "ota.chunk_written" for p in points),
            sum(p.checkpoint == "swap.sector" for p in points))


if __name__ == "__main__":
    sys.exit(main())
