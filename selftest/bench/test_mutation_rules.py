"""The rules bench/mutation.py counts mutants by: which mutants are equivalent by rule (type annotations,
code that runs only with a catalogue defect on, a signature's bare ``*``), the operator set it hands
cosmic-ray's filter, the lines a mutation changed and the kill rate. (The run itself needs cosmic-ray
and minutes per area: it is a bench script, not a test.)"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import mutation_results as rules  # noqa: E402
from mutation_select import changed_lines  # noqa: E402

SOURCE = '''from __future__ import annotations


def handler(state, device, nonce: int | None, *, strict: bool = True) -> int | None:
    if device is None and "unknown-device-accepted" in state.defects:
        device = register(state)
    if "no-rate-limit" not in state.defects:
        limit = state.limit + 1
    early = _early(state) if "nonce-check-not-atomic" in state.defects else None
    return nonce


def _early(state):
    return _helper(state) + 1


def _helper(state):
    return state.last - 1
'''


def reason_at(line: int, text: str, operator: str = "core/NumberReplacer", *, survived: bool = False) -> str | None:
    col = SOURCE.splitlines()[line - 1].index(text)
    return rules.rule_for(rules.rule_spans(SOURCE), (line, col), operator, survived=survived)


def test_annotations_are_equivalent_under_postponed_evaluation() -> None:
    assert reason_at(4, "int | None") == rules.ANNOTATION
    line = SOURCE.splitlines()[3]
    returns = (4, line.index("-> int") + 3)
    assert rules.rule_for(rules.rule_spans(SOURCE), returns, "core/ReplaceBinaryOperator_BitOr_BitAnd") == rules.ANNOTATION
    unpostponed = SOURCE.replace("from __future__ import annotations\n", "#\n")
    assert rules.rule_for(rules.rule_spans(unpostponed), (4, SOURCE.splitlines()[3].index("int |")),
                          "core/ReplaceBinaryOperator_BitOr_BitAnd") is None  # fmt: skip


def test_code_guarded_by_a_defect_flag_is_defect_only_but_not_the_guard_itself() -> None:
    assert reason_at(6, "register(state)") == rules.DEFECT_ONLY  # the body of a positive guard
    assert reason_at(5, "device is None", "core/ReplaceComparisonOperator_Is_IsNot") == rules.DEFECT_ONLY
    assert reason_at(5, "device is None", "core/AddNot") is None  # negating the guard turns the defect on
    assert reason_at(8, "state.limit + 1", "core/ReplaceBinaryOperator_Add_Sub") is None  # `not in`: the sound path
    assert reason_at(9, "_early(state)") == rules.DEFECT_ONLY  # the true branch of a guarded expression


def test_private_definitions_used_only_by_defect_code_are_defect_only() -> None:
    assert reason_at(14, "+ 1") == rules.DEFECT_ONLY  # _early: called only under the guard
    assert reason_at(18, "- 1") == rules.DEFECT_ONLY  # _helper: called only from _early


def test_a_bare_star_explains_a_survivor_only() -> None:
    assert reason_at(4, "*,", "core/ReplaceBinaryOperator_Mul_Div") is None  # run it: it may be killed
    assert reason_at(4, "*,", "core/ReplaceBinaryOperator_Mul_Div", survived=True) == rules.KEYWORD_ONLY


def test_the_operator_set_excludes_every_other_replacement() -> None:
    _, exclude = rules.load_areas(ROOT / "bench" / "mutation.toml")
    excluded = re.compile("|".join(f"(:?{e})" for e in exclude))  # as cosmic-ray's operators filter joins them
    assert not excluded.match("core/ReplaceComparisonOperator_Lt_LtE")
    assert excluded.match("core/ReplaceComparisonOperator_Lt_Eq")
    assert not excluded.match("core/ReplaceBinaryOperator_Add_Sub")
    assert excluded.match("core/ReplaceBinaryOperator_Add_Mul")
    assert not excluded.match("core/NumberReplacer")
    assert excluded.match("core/VariableReplacer")


def test_every_area_names_modules_that_exist_and_tests_to_run() -> None:
    areas, _ = rules.load_areas(ROOT / "bench" / "mutation.toml")
    assert {"server-upload", "server-ota", "device-upload", "device-ota", "boot-chain"} <= set(areas)
    for area in areas.values():
        assert all((ROOT / m).is_file() for m in area.modules), area.name
        assert all((ROOT / t).exists() for run in area.passes for t in run.tests), area.name


def test_changed_lines_are_the_original_lines_a_mutation_replaced() -> None:
    before = "a = 1\nb = 2\nc = 3\n"
    assert changed_lines(before, "a = 1\nb = 3\nc = 3\n") == [2]
    assert changed_lines(before, before) == []


def test_kill_rate_counts_timeouts_as_kills_and_leaves_out_equivalents() -> None:
    assert rules.kill_rate(Counter(killed=8, timeout=1, survived=1, **{"equivalent-listed": 5})) == 0.9
    assert rules.kill_rate(Counter({"equivalent-rule": 3})) is None


def test_every_listed_equivalent_has_its_reason_and_names_a_module() -> None:
    for entry in rules.load_equivalents(ROOT / "bench" / "mutation_survivors.toml"):
        assert (ROOT / entry.module).is_file() and entry.reason.strip() and entry.operator.startswith("core/")
