"""HTML fragments the report inserts: every piece of text is escaped here, at the one place.

pytest-html 4 inserts extras, summary fragments and environment values as markup; nothing it is
handed is escaped for us, so nothing leaves this module unescaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import quote

from hil.report.stride import CATEGORIES, COLUMNS, StrideMatrix

_STYLE = """<style>
.hil-table{border-collapse:collapse;margin:.5em 0}
.hil-table th,.hil-table td{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
.hil-pass{color:#080;font-weight:bold}.hil-fail{color:#c00;font-weight:bold}
.hil-uncovered{background:#fdd}.hil-uncovered td:first-child::after{content:" — UNCOVERED";color:#c00}
.hil-tail{max-height:30em;overflow:auto;background:#f6f6f6;padding:4px;white-space:pre-wrap}
</style>"""


def escape_text(text: str) -> str:
    """Text made safe for insertion as markup."""
    return escape(text)


def escape_url(href: str) -> str:
    """A relative path or anchor made safe for an href attribute (percent-quoted, escaped)."""
    return escape(quote(href, safe="/#.:-_~"))


def link(href: str, text: str) -> str:
    """An <a> to a relative path or anchor."""
    return f'<a href="{escape_url(href)}">{escape(text)}</a>'


def test_id_cell(test_id: str) -> str:
    """The escaped test id pytest-html puts in a row; the JS also makes it the row's element id."""
    return escape(test_id)


def test_link(nodeid: str) -> str:
    """A link to a test's row in the results table."""
    return link("#" + test_id_cell(nodeid), nodeid)


def _table(
    headers: Iterable[str], rows: Iterable[Iterable[str]], css: str = "", row_classes: list[str] | None = None
) -> str:
    """A table from already-escaped cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for index, cells in enumerate(rows):
        cls = row_classes[index] if row_classes else ""
        attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="hil-table {css}"><tr>{head}</tr>{"".join(body)}</table>'


def _verdict(verdict: str) -> str:
    css = {"PASS": "hil-pass", "FAIL": "hil-fail"}.get(verdict, "")
    return f'<span class="{css}">{escape(verdict)}</span>'


def _measurement_cells(row: dict[str, Any]) -> list[str]:
    return [
        escape(str(row["name"])),
        escape(str(row["value"])),
        escape(row["unit"] or ""),
        escape(row["limit"] or ""),
        _verdict(row["verdict"]),
    ]


def measurements_table(rows: list[dict[str, Any]]) -> str:
    """Per-test table: name, value, unit, limit, PASS/FAIL."""
    return "<h4>Measurements</h4>" + _table(
        ("Measurement", "Value", "Unit", "Limit", "Result"), (_measurement_cells(r) for r in rows), "hil-measurements"
    )


def run_measurements_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Summary table of all measurements of the run: (nodeid, row) pairs."""
    if not rows:
        return "<h3>Measurements</h3><p>No measurements were recorded.</p>"
    cells = ([test_link(nodeid), *_measurement_cells(r)] for nodeid, r in rows)
    return "<h3>Measurements</h3>" + _table(
        ("Test", "Measurement", "Value", "Unit", "Limit", "Result"), cells, "hil-run-measurements"
    )


def notes_block(notes: list[str]) -> str:
    """The test's notes as a list."""
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return f"<h4>Notes</h4><ul>{items}</ul>"


def tail_block(title: str, tail: str, href: str | None, lines: int) -> str:
    """A text tail with a heading and a link to the full file."""
    full = f" ({link(href, 'full file')})" if href else ""
    return f'<h4>{escape(title)} — last {lines} lines{full}</h4><pre class="hil-tail">{escape(tail)}</pre>'


def stride_matrix(matrix: StrideMatrix) -> str:
    """The STRIDE coverage matrix: one row per category, outcome counts, linked test names."""
    rows, classes = [], []
    for letter, row in matrix.rows.items():
        tests = (
            "<br>".join(
                f"{test_link(t['nodeid'])} ({escape(t['outcome'])})"
                + (f" — {escape(t['threat'])}" if t["threat"] else "")
                for t in row.tests
            )
            or "<em>no test</em>"
        )
        label = f"{letter} — {CATEGORIES[letter]}" + ("" if row.covered else f" ({row.status})")
        rows.append([escape(label)] + [str(row.counts[c]) for c in COLUMNS] + [tests])
        classes.append("" if row.covered else "hil-uncovered")
    uncovered = ", ".join(
        CATEGORIES[c] + ("" if matrix.rows[c].status == "no test" else f" ({matrix.rows[c].status})")
        for c in matrix.uncovered
    )
    note = (
        f'<p class="hil-fail">Uncovered STRIDE categories: {escape(uncovered)}</p>'
        if uncovered
        else "<p>All STRIDE categories are covered: at least one test of each reached a verdict.</p>"
    )
    return (
        _STYLE
        + "<h3>STRIDE coverage</h3>"
        + note
        + _table(("Category", *COLUMNS, "Tests"), rows, "hil-stride", classes)
    )
