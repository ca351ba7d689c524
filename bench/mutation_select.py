"""The test command of a mutation run (bench/mutation.py), inside a worker's copy of the tree: run the
scenarios that execute the mutated lines, not all of the area's.

    python bench/mutation_select.py map --area NAME   # unmutated: run the area's scenarios under
                                                      # coverage, keep which test runs which line
    python bench/mutation_select.py run --area NAME   # mutated: find the changed lines, run the
                                                      # scenarios that execute them (pytest -x)

Tests are selected line by line, as mutmut does: a mutant on a line no scenario executes survives at
once, with that said; a line executed only while modules are imported (constants, ``def`` lines) is run
against every test that executes any line of its module (the whole pass if none does). Lines run in
the pytest process (the reference server) are labelled with their test by pytest-cov; the virtual
board runs in a process of its own, which measures itself (hil.sim.measure, ``HIL_SIM_COVERAGE``) and
is told the running test by the ``mutation_contexts`` plugin. Without a change (the baseline) every
test of every pass runs.
"""

from __future__ import annotations

import argparse
import ctypes
import difflib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutation_results import SELFTEST_KILL, Area, Pass, load_areas

from hil.sim.measure import ENV as SIM_COVERAGE

HERE = Path.cwd()
BENCH = Path(__file__).resolve().parent  # where the mutation_contexts plugin is imported from
STORE = HERE / ".mutation-map"  # bench/mutation.py copies it between workers (MAP_DIR)


def pytest_command(run: Pass, targets: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", *extra, *targets, *run.args]


PR_SET_PDEATHSIG = 1
HUNG = 3  # run_pass's exit code when the tests outlived their bound: a hang is a failure a run notices
START_S = 30.0  # a pytest start with the plugin, a virtual board and its first flash, with room
SLOWER = 4.0  # how much slower than in the unmutated map run a test may get before it counts as hung


def die_with_parent() -> None:
    """The calling process gets SIGTERM when its parent dies (Linux): a stopped cosmic-ray worker takes
    its test run, and the run its pytest (whose virtual boards die with it), instead of orphaning them."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_pass(run: Pass, targets: list[str] | None = None, bound: float | None = None) -> int:
    """Run the pass's tests (or *targets*); HUNG when they take longer than *bound* seconds (a mutant
    that makes a fault wait forever must not hold a worker for cosmic-ray's whole-pass timeout)."""
    cmd = pytest_command(run, list(run.tests) if targets is None else targets)
    try:
        return subprocess.run(cmd, check=False, timeout=bound, preexec_fn=die_with_parent).returncode
    except subprocess.TimeoutExpired:
        print(f"mutation_select: the tests ran past {bound:.0f} s (unmutated they take less): hung", flush=True)
        return HUNG


def build_map(area: Area) -> int:
    """Run each pass of the area under coverage with one context per test; keep the pristine modules
    and, per pass and module line, the tests that executed it (in run order)."""
    STORE.mkdir(exist_ok=True)
    sources = sorted({str(Path(m).parent) for m in area.modules})
    import coverage

    passes = []
    for index, run in enumerate(area.passes):
        data_file = STORE / f"{area.name}-{index}.coverage"
        data_file.unlink(missing_ok=True)
        board_file = STORE / f"{area.name}-{index}.board.coverage"  # + one suffix per board process
        for old in STORE.glob(f"{board_file.name}.*"):
            old.unlink()
        junit = STORE / f"{area.name}-{index}.xml"
        cmd = pytest_command(run, list(run.tests), "-p", "no:randomly", "-p", "mutation_contexts",
                             *[f"--cov={s}" for s in sources], "--cov-context=test", "--cov-report=",
                             f"--junitxml={junit}")  # fmt: skip
        path = os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "COVERAGE_FILE": str(data_file), SIM_COVERAGE: str(board_file), "PYTHONPATH": path}
        code = subprocess.run(cmd, env=env, check=False, preexec_fn=die_with_parent).returncode
        if code != 0:
            return code
        data = coverage.CoverageData(basename=str(data_file))
        data.read()
        for part in sorted(STORE.glob(f"{board_file.name}.*")):  # what the virtual boards ran
            board_data = coverage.CoverageData(basename=str(part))
            board_data.read()
            data.update(board_data)
        order: dict[str, int] = {}
        lines: dict[str, dict[str, list[str]]] = {}
        for module in area.modules:
            lines[module] = {}
            for line, contexts in sorted(data.contexts_by_lineno(str(HERE / module)).items()):
                named = {c.rsplit("|", 1)[0] for c in contexts if c}  # "tests/x.py::test_y|run" -> the test
                tests = sorted(named, key=lambda t: order.setdefault(t, len(order)))
                lines[module][str(line)] = tests or ["*"]  # "*": executed at import, before any test
        if not order:  # every line "*": each mutant would run the whole pass, for hours
            print(
                f"mutation_select: pass {index} of {area.name} recorded no per-test coverage contexts "
                f"({data_file}); is --dist set in pytest.ini? (pytest-cov then takes -n 0 for a distributed run)",
                file=sys.stderr,
            )
            return 1
        passes.append({"lines": lines, "seconds": durations(junit)})
    pristine = {m: (HERE / m).read_text() for m in area.modules}
    (STORE / f"{area.name}.json").write_text(json.dumps({"passes": passes, "pristine": pristine}))
    return 0


def durations(junit: Path) -> dict[str, float]:
    """Seconds per test node id, from pytest's JUnit XML (classname ``tests.test_x.TestY`` + name)."""
    out: dict[str, float] = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        parts = case.get("classname", "").split(".")
        for cut in range(len(parts), 0, -1):  # the longest prefix that is a file is the module
            module = "/".join(parts[:cut]) + ".py"
            if (HERE / module).is_file():
                out["::".join([module, *parts[cut:], case.get("name", "")])] = float(case.get("time", "0"))
                break
    return out


def changed_lines(before: str, after: str) -> list[int]:
    """Line numbers (1-based, of *before*) that the mutation replaced."""
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    return [i + 1 for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal" for i in range(i1, max(i2, i1 + 1))]


def run_selected(area: Area) -> int:
    """Each pass in turn, with the tests the mutated lines need; 0 (survived) at once when no test of
    any pass executes them. The first failing pass kills the mutant."""
    stored = json.loads((STORE / f"{area.name}.json").read_text())
    mutated = [(m, text) for m, text in stored["pristine"].items() if (HERE / m).read_text() != text]
    if not mutated:
        return next((code for run in area.passes if (code := run_pass(run)) != 0), 0)
    selected: list[list[str]] = []
    for recorded in stored["passes"]:
        tests: list[str] = []
        for module, text in mutated:
            for line in changed_lines(text, (HERE / module).read_text()):
                tests += recorded["lines"][module].get(str(line), [])
            if "*" in tests:  # run at import (a constant, a def line): every test that runs the module's code
                tests = [t for t in tests if t != "*"] + [
                    t for line_tests in recorded["lines"][module].values() for t in line_tests if t != "*"
                ] or ["*"]
        seconds = recorded["seconds"]  # quickest first: a killed mutant costs its quickest failing test
        selected.append(sorted(dict.fromkeys(tests), key=lambda t: seconds.get(t, float("inf"))))
    if not any(selected):
        where = ", ".join(m for m, _ in mutated)
        print(f"mutation_select: no test of {area.name} executes the mutated lines of {where}: survived unrun")
        return 0
    for run, tests, recorded in zip(area.passes, selected, stored["passes"], strict=True):
        if tests:
            seconds = recorded["seconds"]
            everything = "*" in tests
            spent = sum(seconds.values()) if everything else sum(seconds.get(t, START_S) for t in tests)
            code = run_pass(run, None if everything else tests, bound=START_S + SLOWER * spent)
            if code != 0:
                if all(t.startswith("selftest/") for t in run.tests):
                    print(SELFTEST_KILL, flush=True)  # the report counts these apart from the scenarios' kills
                return code
    return 0


def main() -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("map", "run"))
    parser.add_argument("--area", required=True)
    args = parser.parse_args()
    areas, _ = load_areas(HERE / "bench" / "mutation.toml")
    area = areas[args.area]
    if args.mode == "map":
        return build_map(area)
    return run_selected(area)


if __name__ == "__main__":
    raise SystemExit(main())
