"""Wall time of the boot scenarios on one virtual board, and the per-test fixed overhead.

Runs the boot scenarios (tests/test_boot.py, tests/test_swap.py) and a probe of empty tests that
only use the fixtures, each several times in a fresh pytest process on one virtual board, and prints
medians: whole run, per scenario, and the fixture overhead per test.

    python bench/boot_suite.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ["tests/test_boot.py", "tests/test_swap.py"]
PROBE = ["bench/overhead_probe.py"]


def run(paths: list[str], out: Path) -> tuple[float, dict[str, float]]:
    """One pytest process; returns (wall seconds, {test name: seconds incl. setup/teardown})."""
    junit = out / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", *paths, "-q", "-n", "0", "-p", "no:cacheprovider",
           "-W", "ignore::DeprecationWarning", "--hil-virtual", f"--hil-report-dir={out}",
           f"--hil-logs-dir={out / 'logs'}", f"--junitxml={junit}", "-o", "junit_duration_report=total"]
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"pytest failed ({result.returncode}):\n{result.stdout[-3000:]}")
    cases = {case.get("name"): float(case.get("time")) for case in ET.parse(junit).iter("testcase")}
    return wall, cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls: list[float] = []
    per_test: dict[str, list[float]] = {}
    probe: dict[str, list[float]] = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            wall, cases = run(SCENARIOS, Path(tmp))
            walls.append(wall)
            for name, secs in cases.items():
                per_test.setdefault(name, []).append(secs)
        with tempfile.TemporaryDirectory() as tmp:
            for name, secs in run(PROBE, Path(tmp))[1].items():
                probe.setdefault(name, []).append(secs)
    median = statistics.median
    print(f"boot scenarios, one virtual board, median of {args.runs} runs")
    print(f"  whole pytest process (start, board start, image build check, {len(per_test)} tests): "
          f"{median(walls):6.2f} s")
    print(f"  sum of test times (setup + call + teardown):                   "
          f"{sum(median(v) for v in per_test.values()):6.2f} s")
    for name, secs in sorted(per_test.items(), key=lambda kv: -median(kv[1])):
        print(f"    {median(secs):6.3f} s  {name}")
    print("per-test fixed overhead (probe tests with empty bodies, after a warm-up test)")
    for name, secs in probe.items():
        if name == "test_warm_up":
            continue
        print(f"    {median(secs):6.3f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
