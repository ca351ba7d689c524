"""The data of a mutation run (bench/mutation.py): the areas and operator set of bench/mutation.toml,
the equivalent mutants of bench/mutation_survivors.toml, the annotation rule, and the kill rate per
area and module read back from cosmic-ray's session databases."""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


ANNOTATION = "equivalent by rule: inside a type annotation, never evaluated (from __future__ import annotations)"
FAMILIES = {
    "comparison": "ReplaceComparisonOperator",
    "binary": "ReplaceBinaryOperator",
    "unary": "ReplaceUnaryOperator",
}
FILTERED = "Filtered operator"  # cosmic-ray's operators filter: outside the operator set
TARGET_RATE = 0.90
UNBUILT = "cosmic_ray/mutating.py"  # in a worker's traceback: the mutation itself failed, no test ran
# what bench/mutation_select.py prints when a pass of selftest/ (not a scenario) killed the mutant
SELFTEST_KILL = "mutation_select: killed by a pass of the project's own tests (selftest/), not by a scenario"
_LAYOUT = (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)


@dataclass(frozen=True)
class Pass:
    """One pytest run of an area: test files or folders, and extra arguments (a wire profile)."""

    tests: tuple[str, ...]
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Area:
    """Modules mutated together and the test runs that must kill their mutants (first failure wins)."""

    name: str
    about: str
    modules: tuple[str, ...]
    passes: tuple[Pass, ...]


@dataclass(frozen=True)
class Equivalent:
    """A survivor written down as equivalent: where (module, operator, the source line) and why."""

    module: str
    operator: str
    line: str
    reason: str


@dataclass(frozen=True)
class Mutant:
    """One mutant's place and result."""

    module: str
    line_no: int
    line: str
    operator: str
    occurrence: int
    diff: str


@dataclass
class Tally:
    """An area's results: counts per module and the mutants still alive."""

    area: Area
    per_module: dict[str, Counter[str]] = field(default_factory=dict)
    survivors: list[Mutant] = field(default_factory=list)  # not explained
    explained: list[tuple[Mutant, Equivalent]] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)  # modules changed since their session was made

    def count(self, module: str, what: str) -> None:
        self.per_module.setdefault(module, Counter())[what] += 1

    def total(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for counts in self.per_module.values():
            out.update(counts)
        return out


def load_areas(path: Path) -> tuple[dict[str, Area], list[str]]:
    """The areas, and the cosmic-ray operator names (regular expressions) not run."""
    data = tomllib.loads(path.read_text())
    ops = data["operators"]
    exclude = [rf"core/{family}_(?!(?:{'|'.join(ops[key])})$)" for key, family in FAMILIES.items()] + [
        rf"{name}$" for name in ops.get("excluded", [])
    ]
    areas = {
        name: Area(
            name,
            spec["about"],
            tuple(spec["modules"]),
            tuple(Pass(tuple(run["tests"]), tuple(run.get("args", ()))) for run in spec["pass"]),
        )
        for name, spec in data["area"].items()
    }
    return areas, exclude


def load_equivalents(path: Path) -> list[Equivalent]:
    """The equivalent mutants written down, each with its reason (an entry without one is an error)."""
    if not path.is_file():
        return []
    entries = tomllib.loads(path.read_text()).get("equivalent", [])
    out = []
    for i, entry in enumerate(entries, 1):
        missing = [k for k in ("module", "operator", "line", "reason") if not str(entry.get(k, "")).strip()]
        if missing:
            raise SystemExit(f"{path}: equivalent #{i} lacks {', '.join(missing)}; each entry needs all four")
        out.append(Equivalent(entry["module"], entry["operator"], entry["line"].strip(), entry["reason"]))
    return out


Span = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class RuleSpan:
    """Source a rule calls equivalent: the span, the reason, and operators the rule does not cover."""

    span: Span
    reason: str
    except_operators: frozenset[str] = frozenset()
    if_survived: bool = False  # explains a survivor, but the mutant is run: it may still be killed

    def covers(self, start: tuple[int, int], operator: str) -> bool:
        lo, hi = self.span
        return lo <= start < hi and not any(operator.endswith(o) for o in self.except_operators)


def _span(node: ast.expr | ast.stmt) -> Span:
    return ((node.lineno, node.col_offset), (node.end_lineno or node.lineno, node.end_col_offset or 0))


def _body_span(body: list[ast.stmt]) -> Span:
    return (_span(body[0])[0], _span(body[-1])[1])


def _is_defect_flag(node: ast.expr) -> bool:
    """``"name" in <...>.defects`` (positive: the guarded code runs only with that defect on)."""
    return (
        isinstance(node, ast.Compare)
        and isinstance(node.left, ast.Constant)
        and isinstance(node.left.value, str)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.In)
        and (
            (isinstance(node.comparators[0], ast.Attribute) and node.comparators[0].attr == "defects")
            or (isinstance(node.comparators[0], ast.Name) and node.comparators[0].id == "defects")
        )
    )


def _defect_guard(test: ast.expr) -> list[ast.expr] | None:
    """The other conjuncts of a test that holds only with a defect on (``[]``: the flag alone); None
    when *test* is not such a guard."""
    if _is_defect_flag(test):
        return []
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) and any(_is_defect_flag(v) for v in test.values):
        return [v for v in test.values if not _is_defect_flag(v)]
    return None


# Mutants that act on a defect guard itself (turn it on in an ordinary run) are real and not covered.
_GUARD_OPERATORS = frozenset({"AddNot", "ReplaceAndWithOr", "_In_NotIn"})
DEFECT_ONLY = "equivalent by rule: runs only with a catalogue defect switched on (the defect proofs cover it)"


def rule_spans(source: str) -> list[RuleSpan]:
    """Where mutants are equivalent by rule: type annotations (never evaluated under
    ``from __future__ import annotations``), and code that runs only with a catalogue defect on (the
    body of ``if "name" in ….defects``, the true branch of such a conditional expression, the other
    conjuncts of such a guard); the scenario suite runs without defects, the defect proofs with them."""
    tree = ast.parse(source)
    postponed = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(a.name == "annotations" for a in node.names)
        for node in tree.body
    )
    out: list[RuleSpan] = []
    for node in ast.walk(tree):
        if postponed:
            if isinstance(node, ast.arg) and node.annotation is not None:
                out.append(RuleSpan(_span(node.annotation), ANNOTATION))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
                out.append(RuleSpan(_span(node.returns), ANNOTATION))
            elif isinstance(node, ast.AnnAssign):
                out.append(RuleSpan(_span(node.annotation), ANNOTATION))
        if isinstance(node, (ast.If, ast.IfExp)) and (others := _defect_guard(node.test)) is not None:
            body = _body_span(node.body) if isinstance(node, ast.If) else _span(node.body)
            out.append(RuleSpan(body, DEFECT_ONLY))
            out += [RuleSpan(_span(o), DEFECT_ONLY, _GUARD_OPERATORS) for o in others]
    return out + _defect_only_definitions(tree, out) + _bare_stars(source)


def _defect_only_definitions(tree: ast.Module, spans: list[RuleSpan]) -> list[RuleSpan]:
    """The module's private functions and classes used only from code that runs with a defect on (and,
    in turn, only from those): their whole bodies run only with that defect on."""
    defs = {
        node.name: node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith("_")
    }
    uses: dict[str, list[tuple[int, int]]] = {name: [] for name in defs}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in uses:
            uses[node.id].append((node.lineno, node.col_offset))
    found: list[RuleSpan] = []
    changed = True
    while changed:
        changed = False
        guarded = [r.span for r in (*spans, *found) if r.reason == DEFECT_ONLY and not r.except_operators]
        for name, node in defs.items():
            if any(r.span == _span(node) for r in found) or not uses[name]:
                continue
            if all(any(lo <= at < hi for lo, hi in guarded) for at in uses[name]):
                found.append(RuleSpan(_span(node), DEFECT_ONLY))
                changed = True
    return found


KEYWORD_ONLY = (
    "equivalent by rule: the bare `*` of a signature made `/` (positional-only): no caller passes the "
    "parameters before it by keyword, and those after it may still be"
)


def _bare_stars(source: str) -> list[RuleSpan]:
    """The keyword-only markers (``def f(a, *, b)``): cosmic-ray takes the bare ``*`` for a product."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type not in _LAYOUT]
    return [
        RuleSpan((tok.start, tok.end), KEYWORD_ONLY, if_survived=True)
        for before, tok, after in zip(tokens, tokens[1:], tokens[2:], strict=False)
        if tok.string == "*" and before.string in ("(", ",") and after.string == ","
    ]


def rule_for(spans: list[RuleSpan], start: tuple[int, int], operator: str, *, survived: bool = False) -> str | None:
    """The reason a mutant at *start* is equivalent by rule (a rule that explains survivors only
    when it *survived*), or None."""
    return next((r.reason for r in spans if r.covers(start, operator) and (survived or not r.if_survived)), None)


def skip_by_rule(session: Path, root: Path) -> int:
    """Mark the mutants equivalent by rule as skipped, with the rule as their output; returns how many."""
    spans: dict[str, list[RuleSpan]] = {}
    skipped = 0
    from cosmic_ray.work_db import WorkDB, use_db  # the rules above need no cosmic-ray
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            (mutation,) = item.mutations
            module = str(mutation.module_path)
            if module not in spans:
                spans[module] = rule_spans((root / module).read_text())
            reason = rule_for(spans[module], tuple(mutation.start_pos), mutation.operator_name)
            if reason is not None:
                db.set_result(item.job_id, WorkResult(output=reason, worker_outcome=WorkerOutcome.SKIPPED))
                skipped += 1
    return skipped


def classify(area: Area, sessions: list[Path], root: Path, equivalents: list[Equivalent]) -> Tally:
    """Read an area's session back: each mutant killed, survived (explained or not), equivalent by rule,
    incompetent, not run (outside the operator set) or still pending."""
    tally = Tally(area)
    lines: dict[str, list[str]] = {}
    spans: dict[str, list[RuleSpan]] = {}
    for session in sessions:
        _classify_session(tally, session, root, equivalents, lines, spans)
    return tally


def _classify_session(
    tally: Tally,
    session: Path,
    root: Path,
    equivalents: list[Equivalent],
    lines: dict[str, list[str]],
    spans: dict[str, list[RuleSpan]],
) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    with use_db(str(session), WorkDB.Mode.open) as db:
        results = {job_id: result for job_id, result in db.results}
        for item in db.work_items:
            (mutation,) = item.mutations
            module = str(mutation.module_path)
            if module not in lines:  # the source the session's mutants were made of (lines shift)
                kept = session.with_suffix(".source")
                source = kept.read_text() if kept.is_file() else (root / module).read_text()
                lines[module], spans[module] = source.splitlines(), rule_spans(source)
                if source != (root / module).read_text():
                    tally.stale.add(module)
            line_no = mutation.start_pos[0]
            result = results.get(item.job_id)
            if result is not None and result.worker_outcome == WorkerOutcome.SKIPPED and result.output == FILTERED:
                tally.count(module, "not-run")
                continue
            if rule_for(spans[module], tuple(mutation.start_pos), mutation.operator_name) is not None:
                tally.count(module, "equivalent-rule")  # also when run before the rule existed
                continue
            if result is None:
                tally.count(module, "pending")
                continue
            if result.worker_outcome == WorkerOutcome.SKIPPED:  # a rule that no longer applies
                tally.count(module, "pending")
                continue
            if result.worker_outcome != WorkerOutcome.NORMAL:
                # cosmic-ray failing to build the mutant (its ExceptionReplacer on a tuple of dotted
                # names) is a mutant that does not exist, as incompetent as one that does not compile
                unbuilt = result.worker_outcome == WorkerOutcome.EXCEPTION and UNBUILT in (result.output or "")
                tally.count(module, "incompetent" if unbuilt else "error")
                continue
            if result.test_outcome == TestOutcome.INCOMPETENT:
                tally.count(module, "incompetent")
                continue
            if result.test_outcome == TestOutcome.KILLED:
                tally.count(module, "timeout" if (result.output or "").strip() == "timeout" else "killed")
                if SELFTEST_KILL in (result.output or ""):
                    tally.count(module, "by-selftest")
                continue
            if rule_for(spans[module], tuple(mutation.start_pos), mutation.operator_name, survived=True) is not None:
                tally.count(module, "equivalent-rule")
                continue
            text = lines[module][line_no - 1].strip() if 0 < line_no <= len(lines[module]) else ""
            mutant = Mutant(module, line_no, text, mutation.operator_name, mutation.occurrence, result.diff or "")
            place = (module, mutant.operator, text)
            match = next((e for e in equivalents if (e.module, e.operator, e.line) == place), None)
            if match is not None:
                tally.count(module, "equivalent-listed")
                tally.explained.append((mutant, match))
            else:
                tally.count(module, "survived")
                tally.survivors.append(mutant)


def kill_rate(counts: Counter[str]) -> float | None:
    """Killed (timeouts included: a hang is caught by the scenarios' bounds) over the non-equivalent."""
    killed = counts["killed"] + counts["timeout"]
    alive = counts["survived"]
    return killed / (killed + alive) if killed + alive else None


COLUMNS = ("killed", "timeout", "survived", "equivalent-listed", "equivalent-rule", "incompetent", "pending", "error")


def _row(name: str, counts: Counter[str]) -> str:
    rate = kill_rate(counts)
    shown = f"{rate:6.1%}" if rate is not None else "     -"
    return f"{name:42s} " + " ".join(f"{counts[c]:>8d}" for c in COLUMNS) + f"  {shown}"


def print_report(tallies: list[Tally], equivalents: list[Equivalent], *, show_all: bool) -> int:
    """Print the kill rate per area (and module), the open survivors, stale equivalents; 0 when every
    area reaches the target rate with nothing pending."""
    heads = ("killed", "timeout", "survived", "equiv.l", "equiv.r", "incomp.", "pending", "error")
    print(f"{'area / module':42s} " + " ".join(f"{h:>8s}" for h in heads) + "  kill rate")
    ok = True
    used: set[Equivalent] = set()
    for tally in tallies:
        total = tally.total()
        print(_row(f"{tally.area.name}", total))
        for module, counts in sorted(tally.per_module.items()):
            print(_row(f"  {module}" + (" (changed since)" if module in tally.stale else ""), counts))
        if total["by-selftest"]:
            print(f"  ({total['by-selftest']} of the killed only by the project's own tests, not by a scenario)")
        rate = kill_rate(total)
        ok = ok and rate is not None and rate >= TARGET_RATE and not total["pending"] and not total["error"]
        used.update(e for _, e in tally.explained)
    for tally in tallies:
        for m in tally.survivors:
            print(f"SURVIVED {m.module}:{m.line_no} {m.operator} #{m.occurrence}: {m.line}")
        if show_all:
            for m, e in tally.explained:
                print(f"equivalent {m.module}:{m.line_no} {m.operator}: {m.line}  — {e.reason}")
    areas = {m for t in tallies for m in t.area.modules}
    for e in equivalents:
        if e.module in areas and e not in used:
            print(f"STALE equivalent (no surviving mutant matches it any more): {e.module} {e.operator}: {e.line}")
    print(f"target: {TARGET_RATE:.0%} of non-equivalent mutants killed in every area — {'met' if ok else 'not met'}")
    return 0 if ok else 1
