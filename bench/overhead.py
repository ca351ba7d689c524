"""Fixed cost of one pytest process with the hil plugins, beside plain pytest + pytest-html.

In a temporary folder holding one trivial test, runs several fresh pytest processes, interleaved:

a. baseline: pytest + pytest-html (``--html=… --self-contained-html``, no JUnit file), hil not loaded;
b. hil: the ``hil`` and ``hil_report`` plugins on, with their default outputs (reports/report.html,
   junit.xml and the JSON files);
c. hil, the test using the ``evidence`` fixture (the cheapest hil fixture: no board).

Plugin auto-loading is off in every run and each side loads the same explicit ``-p`` list (pytest-html,
pytest-metadata, pytest-xdist, the plugins hil depends on) plus, for b and c, hil's two entry points:
other plugins installed here (pytest-benchmark, hypothesis, …) do not blur the difference. Prints
median / min / max wall times, the difference and ratio to the baseline, and a ``-X importtime``
breakdown of what run b imports on behalf of hil.

Two bytecode conditions (``--bytecode``): ``none`` — ``PYTHONDONTWRITEBYTECODE=1`` as in this
machine's environment, so every hil module (an editable install has no ``.pyc``) is compiled and
assertion-rewritten by pytest in every process; ``cached`` — bytecode written to a temporary
``PYTHONPYCACHEPREFIX`` during a warm-up run and read afterwards, as after a normal install.

    python bench/overhead.py [--runs 5] [--bytecode both|none|cached] [--top 10]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

COMMON_DISTRIBUTIONS = ("pytest-html", "pytest-metadata", "pytest-xdist")
HIL_DISTRIBUTION = "hil"
TIMEOUT = 120
TESTS = {
    "test_plain.py": "def test_x():\n    pass\n",
    "test_evidence.py": "def test_x(evidence):\n    evidence.note('bench')\n",
}


def entry_points_of(distribution: str) -> list[str]:
    """The ``pytest11`` entry point names a distribution installs (what ``-p NAME`` loads)."""
    return sorted(ep.name for ep in metadata.distribution(distribution).entry_points if ep.group == "pytest11")


@dataclass(frozen=True)
class Variant:
    label: str
    test_file: str
    plugins: tuple[str, ...]
    extra_args: tuple[str, ...]
    expect: tuple[str, ...]  # files the run must have written (relative to its folder)

    def command(self, python: tuple[str, ...] = ()) -> list[str]:
        plugin_args = [arg for name in self.plugins for arg in ("-p", name)]
        return [sys.executable, *python, "-m", "pytest", self.test_file, "-q", *plugin_args, *self.extra_args]


def variants() -> list[Variant]:
    common = tuple(name for dist in COMMON_DISTRIBUTIONS for name in entry_points_of(dist))
    with_hil = common + tuple(entry_points_of(HIL_DISTRIBUTION))
    hil_outputs = ("reports/report.html", "reports/junit.xml", "reports/environment.json")
    return [
        Variant(
            "a. pytest + pytest-html (baseline)",
            "test_plain.py",
            common,
            ("--html=baseline/report.html", "--self-contained-html"),
            ("baseline/report.html",),
        ),
        Variant("b. hil plugins, default report", "test_plain.py", with_hil, (), hil_outputs),
        Variant("c. hil plugins, test uses `evidence`", "test_evidence.py", with_hil, (), hil_outputs),
    ]


def environment(bytecode: str, folder: Path) -> dict[str, str]:
    """The runs' environment: no plugin auto-loading, and the bytecode condition."""
    skip = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if bytecode == "none":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:  # pytest's rewritten modules honour the prefix too: nothing is written into the source tree
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    return env


def run_once(variant: Variant, folder: Path, env: dict[str, str]) -> float:
    """One fresh pytest process in *folder* (its report files removed first); returns wall seconds."""
    for name in variant.expect:
        (folder / name).unlink(missing_ok=True)
    started = time.perf_counter()
    result = subprocess.run(variant.command(), cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.perf_counter() - started
    missing = [name for name in variant.expect if not (folder / name).is_file()]
    if result.returncode != 0 or missing:
        sys.exit(
            f"{variant.label}: exit {result.returncode}, missing {missing}:\n{result.stdout[-3000:]}"
            f"{result.stderr[-3000:]}"
        )
    return wall


# -- -X importtime -------------------------------------------------------------------------------------
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


@dataclass
class Imported:
    name: str
    self_us: int
    cumulative_us: int
    level: int
    parent: Imported | None = None


def parse_importtime(stderr: str) -> list[Imported]:
    """The import tree of ``-X importtime`` output (printed children first: a module's parent is
    the next line at a lower level)."""
    rows = [
        Imported(m[4], int(m[1]), int(m[2]), (len(m[3]) - 1) // 2)
        for m in map(_IMPORT_LINE.match, stderr.splitlines())
        if m
    ]
    pending: list[Imported] = []
    for row in rows:
        while pending and pending[-1].level > row.level:
            pending.pop().parent = row
        pending.append(row)
    return rows


def _is_hil(name: str) -> bool:
    return name == "hil" or name.startswith("hil.")


def import_report(variant: Variant, folder: Path, env: dict[str, str], top: int) -> None:
    result = subprocess.run(
        variant.command(("-X", "importtime")), cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    rows = parse_importtime(result.stderr)
    hil_roots = [r for r in rows if _is_hil(r.name) and not (r.parent and _is_hil(r.parent.name))]
    total = sum(r.cumulative_us for r in hil_roots)
    # third-party / stdlib subtrees a hil module imported first (the cost hil adds by importing them)
    pulled: dict[str, tuple[int, set[str]]] = {}
    for row in rows:
        if not _is_hil(row.name) and row.parent and _is_hil(row.parent.name):
            package = row.name.split(".")[0]
            us, by = pulled.get(package, (0, set()))
            pulled[package] = (us + row.cumulative_us, by | {row.parent.name})
    hil_self = sorted((r for r in rows if _is_hil(r.name)), key=lambda r: -r.self_us)
    print(
        f"  imports on behalf of hil in run b (-X importtime, one run): {total / 1e6:.3f} s, "
        f"{sum(1 for r in rows if _is_hil(r.name))} hil modules"
    )
    print("    packages hil pulled in (cumulative, first importer):")
    for package, (us, by) in sorted(pulled.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"      {us / 1e3:7.1f} ms  {package:<22} from {', '.join(sorted(by)[:3])}{' …' if len(by) > 3 else ''}")
    print("    hil modules by own import time:")
    for row in hil_self[: max(3, top // 2)]:
        print(f"      {row.self_us / 1e3:7.1f} ms  {row.name}")


BYTECODE_CONDITIONS = {
    "none": "no bytecode cache (PYTHONDONTWRITEBYTECODE=1: hil's modules compiled and rewritten every run)",
    "cached": "bytecode cache (PYTHONPYCACHEPREFIX, written by a warm-up run)",
}


def measure(bytecode: str, runs: list[Variant], repeats: int, top: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hil-overhead-") as tmp:
        folder = Path(tmp)
        env = environment(bytecode, folder)
        for name, text in TESTS.items():
            (folder / name).write_text(text, encoding="utf-8")
        walls: dict[str, list[float]] = {v.label: [] for v in runs}
        for variant in runs:  # warm-up: file system caches (and the bytecode cache when there is one)
            run_once(variant, folder, env)
        for _ in range(repeats):
            for variant in runs:  # interleaved, so drifting machine load hits every variant alike
                walls[variant.label].append(run_once(variant, folder, env))
        median = statistics.median
        base = median(walls[runs[0].label])
        print(f"\n{BYTECODE_CONDITIONS[bytecode]}, median of {repeats} runs")
        print(f"  {'':<40} {'median':>8} {'min':>7} {'max':>7} {'- base':>8} {'ratio':>6}")
        for variant in runs:
            secs = walls[variant.label]
            mid = median(secs)
            print(
                f"  {variant.label:<40} {mid:7.3f}s {min(secs):6.3f}s {max(secs):6.3f}s "
                f"{mid - base:+7.3f}s {mid / base:5.2f}x"
            )
        if top:
            import_report(runs[1], folder, env, top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bytecode", choices=("both", *BYTECODE_CONDITIONS), default="both")
    parser.add_argument("--top", type=int, default=10, help="rows of the import breakdown (0: skip it)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    runs = variants()
    print("fixed cost of one pytest process running one trivial test (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1)")
    print(f"  plugins of every run: {' '.join(runs[0].plugins)}")
    print(f"  b and c also: {' '.join(entry_points_of(HIL_DISTRIBUTION))} (distribution {HIL_DISTRIBUTION})")
    for bytecode in BYTECODE_CONDITIONS if args.bytecode == "both" else (args.bytecode,):
        measure(bytecode, runs, args.runs, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
