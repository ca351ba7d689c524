"""The main job's speed budget: wall time of ``pytest`` at the root (the security scenarios) and its
ten slowest scenarios with their share, beside the figures recorded last time.

Each configuration runs the main job as a user does (``python3 -m pytest``, the repo's pytest.ini),
with its report and logs in a temporary directory: ``0`` is one virtual board in one process (the
budget: 60 s on the 2-core reference machine), ``auto`` is the default (``-n auto``: one worker and
one virtual board per core). Per-scenario times come from JUnit (setup + call + teardown).

    python bench/suite_time.py [--runs 3] [--workers 0,auto] [--bench-like] [--record]

``--bench-like`` also runs each configuration against bench-like virtual boards (``--hil-sim-bench``:
own network namespace, USB-Serial/JTAG port that re-enumerates, real boot timing; needs root), and
prints its time beside the plain one (``bench/plain`` ratio).

``--record`` stores the figures in bench/suite_time.json, which the next run prints beside its own.
``.ci/run`` prints the table after the tests (``--runs 1 --workers 0``), for information: it never
fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).with_name("suite_time.json")
BUDGET_S = 60.0  # the main job on one virtual board (issue 11)
SLOWEST = 10
TIMEOUT_S = 1800


BENCH_LIKE = "+bench"  # configuration suffix of a --hil-sim-bench run


def run_main_job(config: str, out: Path) -> tuple[float, dict[str, float], str]:
    """One main job (``config``: a -n value, ``+bench`` appended for bench-like boards);
    (wall seconds, {test id: seconds}, pytest's closing line)."""
    workers, bench_like = config.removesuffix(BENCH_LIKE), config.endswith(BENCH_LIKE)
    junit = out / "junit.xml"
    # --opt=value: pytest reads its rootdir before it knows plugin options, and would take a separate
    # existing directory after --hil-report-dir for a test path (rootdir there, pytest.ini unread)
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", workers, "--hil-virtual", f"--hil-report-dir={out}",
           f"--hil-logs-dir={out / 'logs'}", f"--junitxml={junit}", "-o", "junit_duration_report=total"]
    if bench_like:
        cmd.append("--hil-sim-bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HIL_"))}
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    wall = time.monotonic() - started
    closing = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    if result.returncode != 0 or not junit.exists():
        raise RuntimeError(f"main job with -n {config} failed (exit {result.returncode}): {closing}\n"
                           f"{result.stdout[-3000:]}{result.stderr[-1000:]}")
    cases = {f"{c.get('classname', '')}::{c.get('name', '')}": float(c.get("time", 0))
             for c in ET.parse(junit).iter("testcase")}
    return wall, cases, closing


def _short(test_id: str) -> str:
    """``tests.test_ota::test_x[p]`` -> ``test_ota::test_x[p]``."""
    module, _, name = test_id.partition("::")
    return f"{module.rsplit('.', 1)[-1]}::{name}"


def _previous(record: dict, workers: str) -> dict:
    return record.get("configurations", {}).get(workers, {})


def report(results: dict[str, dict], record: dict) -> list[str]:
    """The table: per configuration the wall time beside the recorded one, then the slowest tests."""
    lines = [f"main job (`pytest` at the root), {len(next(iter(results.values()))['walls'])} run(s) each; "
             f"previous: {record.get('recorded', 'none recorded')} {record.get('commit', '')}".rstrip()]
    lines.append(f"  {'workers':<12} {'median':>8} {'min':>8} {'max':>8} {'previous':>9} {'change':>8}  tests")
    for workers, res in results.items():
        walls = res["walls"]
        median = statistics.median(walls)
        prev = _previous(record, workers).get("wall_s")
        change = f"{median / prev:7.2f}x" if prev else "       -"
        prev_text = f"{prev:8.1f}s" if prev else "        -"
        budget = f"  (budget {BUDGET_S:.0f} s: {'within' if median <= BUDGET_S else 'OVER'})" if workers == "0" else ""
        plain = results.get(workers.removesuffix(BENCH_LIKE))
        if workers.endswith(BENCH_LIKE) and plain:
            budget = f"  (bench/plain {median / statistics.median(plain['walls']):.2f}x)"
        lines.append(f"  -n {workers:<9} {median:7.1f}s {min(walls):7.1f}s {max(walls):7.1f}s {prev_text} {change}  "
                     f"{res['count']}{budget}")
    workers, res = next(iter(results.items()))
    total = sum(res["cases"].values())
    prev_cases = _previous(record, workers).get("tests", {})
    lines.append(f"  {SLOWEST} slowest scenarios (-n {workers}, median seconds, share of {total:.1f} s summed):")
    for test_id, secs in sorted(res["cases"].items(), key=lambda item: -item[1])[:SLOWEST]:
        prev = prev_cases.get(test_id)
        prev_text = f"(was {prev:5.2f} s)" if prev is not None else "(not recorded)"
        lines.append(f"    {secs:6.2f} s {100 * secs / total:5.1f} %  {prev_text:<14} {_short(test_id)}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each configuration (median)")
    parser.add_argument("--workers", default="0,auto", help="comma-separated -n values to measure (0 = one board)")
    parser.add_argument("--bench-like", action="store_true", help="also run each against --hil-sim-bench boards")
    parser.add_argument("--record", action="store_true", help=f"store the figures in {RECORD.name}")
    args = parser.parse_args()
    record = json.loads(RECORD.read_text(encoding="utf-8")) if RECORD.exists() else {}
    results: dict[str, dict] = {}
    configs = args.workers.split(",")
    if args.bench_like:
        configs = [c for w in configs for c in (w, w + BENCH_LIKE)]
    for workers in configs:
        walls: list[float] = []
        per_test: dict[str, list[float]] = {}
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="hil-suite-time-") as tmp:
                wall, cases, _ = run_main_job(workers, Path(tmp))
            walls.append(wall)
            for test_id, secs in cases.items():
                per_test.setdefault(test_id, []).append(secs)
        results[workers] = {"walls": walls, "count": len(per_test),
                            "cases": {t: statistics.median(s) for t, s in per_test.items()}}
    print("\n".join(report(results, record)))
    if args.record:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        doc = {"recorded": time.strftime("%Y-%m-%d"), "commit": commit, "machine": f"{os.cpu_count()} cores",
               "configurations": {
                   w: {"wall_s": round(statistics.median(r["walls"]), 2), "runs": [round(x, 2) for x in r["walls"]],
                       "tests": {t: round(s, 3) for t, s in sorted(r["cases"].items())}}
                   for w, r in results.items()}}
        RECORD.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"recorded in {RECORD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
