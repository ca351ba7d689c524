"""Mutation testing of the harness's security logic with cosmic-ray: does the scenario suite catch the
bugs nobody wrote a defect for?

Each area of ``bench/mutation.toml`` (server upload path, server OTA, device upload, device OTA, boot
chain) is one cosmic-ray session: its modules are mutated one mutant at a time and the area's scenario
files run against each (``pytest -x``: the first failing scenario kills it). The work is sharded over
``--workers`` cosmic-ray HTTP workers, each in a copy of the working tree with its own virtualenv
(``--system-site-packages`` plus an editable install of the copy), so mutants never touch the working
tree, the installed package or each other. Sessions are kept in ``.mutation/``: a re-run resumes, and
an area is started afresh only when its modules changed. After new or stronger scenarios,
``--retest-survivors`` runs the survivors again.

Survivors listed in ``bench/mutation_survivors.toml`` (module, operator, source line, reason) are
equivalent mutants; mutants inside type annotations are equivalent by rule (the modules use
``from __future__ import annotations``: annotations are never evaluated). The kill rate is killed /
(killed + survivors not listed); incompetent mutants (cosmic-ray could not build them) are counted
apart.

    pip install -e '.[mutation]'
    python3 bench/mutation.py [--area server-upload ...] [--workers 2] [--retest-survivors] [--report]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutation_results import (
    Area,
    Equivalent,
    Tally,
    classify,
    load_areas,
    load_equivalents,
    print_report,
    skip_by_rule,
)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"
CONFIG = ROOT / "bench" / "mutation.toml"
SURVIVORS = ROOT / "bench" / "mutation_survivors.toml"
WORKER_START_S = 60.0  # an aiohttp worker is up within a second; a cold virtualenv import takes longer
BASE_PORT = 9876
MAP_DIR = ".mutation-map"  # bench/mutation_select.py's coverage map, in a worker's copy


def run(cmd: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 600.0) -> str:
    """Run *cmd*; its output on success, a clear error naming the command otherwise."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        raise SystemExit(f"mutation: `{' '.join(cmd)}` in {cwd} failed ({proc.returncode}):\n{output}")
    return proc.stdout


class Worker:
    """One cosmic-ray HTTP worker in its own copy of the working tree and its own virtualenv."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.home = WORK / "workers" / f"w{index}"
        self.src = self.home / "src"
        self.venv = self.home / "venv"
        self.port = BASE_PORT + index
        self._proc: subprocess.Popen[str] | None = None
        self.tree = ""  # digest of the copied tree (prepare): a baseline of the same tree is reused

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env['PATH']}"  # `python` in the test command is ours
        env["VIRTUAL_ENV"] = str(self.venv)
        env.pop("PYTHONPATH", None)
        return env

    def prepare(self) -> None:
        """Copy the working tree (tracked files, new ones git does not ignore, the built firmware images)
        and install the copy into the worker's virtualenv when its packaging changed."""
        if self.src.exists():
            shutil.rmtree(self.src)
        tracked = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).split("\0")
        digest = hashlib.sha1()
        for name in sorted(filter(None, tracked)):
            source = ROOT / name
            if source.is_file():
                target = self.src / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
                digest.update(name.encode() + b"\0" + source.read_bytes())
        self.tree = digest.hexdigest()
        builds = ROOT / "firmware_builds"
        shutil.copytree(builds, self.src / "firmware_builds", dirs_exist_ok=True)
        stamp = self.home / "installed.sha1"
        wanted = hashlib.sha1((ROOT / "pyproject.toml").read_bytes()).hexdigest()
        if not self.venv.exists():
            run([sys.executable, "-m", "venv", "--system-site-packages", str(self.venv)])
        if not stamp.is_file() or stamp.read_text() != wanted:
            run([str(self.venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "-e", str(self.src)])
            stamp.write_text(wanted)

    def baseline(self, test_command: str, timeout: float) -> float:
        """Run the area's scenarios on the unmutated copy: they must pass (else every mutant would
        look killed); returns the seconds it took."""
        t0 = time.monotonic()
        proc = subprocess.run(test_command.split(), cwd=self.src, env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise SystemExit(f"mutation: worker {self.index}: the unmutated scenarios fail ({test_command}):\n{tail}")
        return time.monotonic() - t0

    def start(self) -> None:
        """Start the worker and wait for aiohttp's "Running on" line (bounded)."""
        cmd = [str(self.venv / "bin" / "cosmic-ray"), "http-worker", "--port", str(self.port)]
        if not (self.venv / "bin" / "cosmic-ray").exists():
            cmd = [str(self.venv / "bin" / "python"), "-c", "from cosmic_ray.cli import cli; cli()", *cmd[1:]]
        self._proc = subprocess.Popen(cmd, cwd=self.src, env=self.env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + WORKER_START_S
        assert self._proc.stdout is not None
        seen = []
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(timeout=deadline - time.monotonic()):
                    break
                line = self._proc.stdout.readline()
                if not line:
                    break
                seen.append(line)
                if "Running on" in line:
                    return
        self.stop()
        raise SystemExit(f"mutation: worker {self.index} did not start on port {self.port}:\n{''.join(seen)}")

    def stop(self) -> None:
        """Stop the worker and the test run it may have in progress: cosmic-ray starts each test command
        in a session of its own, which a signal to the worker's group does not reach."""
        if self._proc is None:
            return
        if self._proc.poll() is None:  # frozen first: a run it starts after the snapshot would be orphaned
            os.killpg(self._proc.pid, signal.SIGSTOP)
        runs = _descendants(self._proc.pid)
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, 15)
            os.killpg(self._proc.pid, signal.SIGCONT)  # a stopped process acts on SIGTERM once continued
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, 9)
                self._proc.wait(timeout=10)
        for pid in runs:  # the test command and its virtual boards (those die with their parent too)
            try:
                os.killpg(os.getpgid(pid), 15)
            except ProcessLookupError:
                pass
        self._proc = None


def _descendants(pid: int) -> list[int]:
    """Every process below *pid* (from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop(0)
        out.append(child)
        todo += parents.get(child, [])
    return out


def test_command(area: Area, mode: str = "run") -> str:
    """What cosmic-ray runs in a worker per mutant (``run``), or once unmutated (``map``)."""
    return f"python bench/mutation_select.py {mode} --area {area.name}"


def write_config(area: Area, module: str, workers: list[Worker], timeout: float, exclude: list[str]) -> Path:
    path = session_path(area, module).with_suffix(".toml")
    urls = ", ".join(json.dumps(w.url) for w in workers)
    excluded = ", ".join(json.dumps(e) for e in exclude)
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(test_command(area))}\n"
        "[cosmic-ray.distributor]\n"
        'name = "http"\n'
        "[cosmic-ray.distributor.http]\n"
        f"worker-urls = [{urls}]\n"
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n"
    )
    return path


def session_path(area: Area, module: str) -> Path:
    """One cosmic-ray session per module of an area: editing a module restarts only its own."""
    return WORK / area.name / (module.replace("/", "_").removesuffix(".py") + ".sqlite")


def session_for(area: Area, module: str, config: Path, tree: Path) -> Path:
    """The module's session: resumed while the module is unchanged, else made afresh from the workers'
    copy *tree* (what they mutate; the working tree may have moved on since they were prepared):
    cosmic-ray init, then its operators filter and the equivalence rules mark what is not run."""
    session = session_path(area, module)
    stamp = session.with_suffix(".sha1")
    source = (tree / module).read_bytes()
    digest = hashlib.sha1(source).hexdigest()
    if session.exists() and stamp.is_file() and stamp.read_text() == digest:
        return session
    session.unlink(missing_ok=True)
    session.with_suffix(".source").write_bytes(source)  # what the mutants were made of
    run(["cosmic-ray", "init", str(config), str(session)], cwd=tree, timeout=300)
    run(["cr-filter-operators", str(session), str(config)], cwd=tree, timeout=300)
    skip_by_rule(session, tree)
    stamp.write_text(digest)
    return session


def forget_survivors(session: Path, equivalents: list[Equivalent]) -> int:
    """Drop the results of the survivors not written down as equivalent, so ``cosmic-ray exec`` runs
    them again (after new or stronger scenarios); returns how many."""
    lines = session.with_suffix(".source").read_text().splitlines()
    listed = {(e.operator, e.line) for e in equivalents}
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT r.job_id, m.operator_name, m.start_pos_row FROM work_results r "
            "JOIN mutation_specs m ON m.job_id = r.job_id WHERE r.test_outcome = 'SURVIVED'"
        ).fetchall()
        open_ = [
            job for job, op, row in rows if (op, lines[row - 1].strip() if 0 < row <= len(lines) else "") not in listed
        ]
        db.executemany("DELETE FROM work_results WHERE job_id = ?", [(job,) for job in open_])
    return len(open_)


def run_area(area: Area, workers: list[Worker], exclude: list[str], retest: bool) -> None:
    """Check the area's tests pass unmutated (and map them, once, for all workers), then run every
    module's remaining mutants over the workers."""
    t0 = time.monotonic()
    first = workers[0]
    kept = WORK / "baselines" / area.name
    stamp = kept / "tree.json"
    if stamp.is_file() and json.loads(stamp.read_text())["tree"] == first.tree:
        baseline = json.loads(stamp.read_text())["seconds"]  # the same tree passed already: reuse its map
    else:
        baseline = first.baseline(test_command(area, "map"), timeout=1800)
        if kept.exists():
            shutil.rmtree(kept)
        kept.mkdir(parents=True)
        if (first.src / MAP_DIR).is_dir():
            shutil.copytree(first.src / MAP_DIR, kept / MAP_DIR)
        stamp.write_text(json.dumps({"tree": first.tree, "seconds": baseline}))
    for w in workers:  # the map is of the same tree: copied, not made again
        if (kept / MAP_DIR).is_dir():
            shutil.copytree(kept / MAP_DIR, w.src / MAP_DIR, dirs_exist_ok=True)
    timeout = max(60.0, 2 * baseline)
    (WORK / area.name).mkdir(exist_ok=True)
    sessions = []
    for module in area.modules:
        config = write_config(area, module, workers, timeout, exclude)
        session = session_for(area, module, config, first.src)
        if retest:
            forget_survivors(session, load_equivalents(SURVIVORS))
        sessions.append((config, session))
    print(f"{area.name}: baseline {baseline:.1f} s, timeout {timeout:.0f} s per mutant; running…", flush=True)
    for w in workers:
        w.start()
    try:
        for config, session in sessions:
            run(["cosmic-ray", "exec", str(config), str(session)], timeout=24 * 3600)
    finally:
        for w in workers:
            w.stop()
    print(f"{area.name}: done in {time.monotonic() - t0:.0f} s", flush=True)


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # the workers are stopped on the way out


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    areas, exclude = load_areas(CONFIG)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--area", action="append", choices=sorted(areas), help="area to run (repeatable; default all)")
    parser.add_argument("--workers", type=int, default=2, help="cosmic-ray HTTP workers (default 2)")
    parser.add_argument("--retest-survivors", action="store_true", help="run the survivors again")
    parser.add_argument("--report", action="store_true", help="only print the results of the sessions kept")
    parser.add_argument("--list", action="store_true", help="print every survivor, not only the open ones")
    args = parser.parse_args()
    chosen = [areas[name] for name in (args.area or sorted(areas))]
    WORK.mkdir(exist_ok=True)
    if not args.report:
        workers = [Worker(i) for i in range(args.workers)]
        for w in workers:
            w.prepare()
        for area in chosen:
            run_area(area, workers, exclude, args.retest_survivors)
    equivalents = load_equivalents(SURVIVORS)
    tallies: list[Tally] = []
    for area in chosen:
        sessions = [session_path(area, m) for m in area.modules]
        missing = [m for m, s in zip(area.modules, sessions, strict=True) if not s.exists()]
        if missing:
            print(f"{area.name}: no session yet for {', '.join(missing)} (run without --report)")
        tallies.append(classify(area, [s for s in sessions if s.exists()], ROOT, equivalents))
    return print_report(tallies, equivalents, show_all=args.list)


if __name__ == "__main__":
    raise SystemExit(main())
