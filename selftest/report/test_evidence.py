"""Evidence rows: log tails only for failed tests, attachments, PNG embedding, escaping."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import pytest

from hil.report.tail import tail_lines


def _png() -> bytes:
    """A real 1x1 PNG (signature, IHDR, IDAT, IEND with CRCs)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def test_tail_reads_last_lines_of_large_file(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(200_000)) + b"\xff no newline")
    assert tail_lines(log, 3).splitlines() == ["line 199998", "line 199999", "\ufffd no newline"]
    assert tail_lines(log, 0) == ""


TESTS = '''
import pytest
from pathlib import Path

@pytest.fixture
def console(evidence, tmp_path):
    log = tmp_path / "board-0.log"
    log.write_text("".join(f"I ({i}) app: line {i}\\n" for i in range(100)) + "<script>x</script>\\n")
    evidence.add_log("board-0 console", log)
    return log

def test_passes_quietly(console):
    pass

def test_fails_loudly(console):
    assert False, "boom"

def test_attachments(evidence, tmp_path):
    evidence.attach_text("server <log>", "\\n".join(f"req {i}" for i in range(50)), tail_lines=5)
    pcap = tmp_path / "run.pcap"
    pcap.write_bytes(b"\\xd4\\xc3\\xb2\\xa1")
    evidence.attach_file('capture "<b>"', pcap)
    evidence.attach_png("latency plot", PNG)
    evidence.note("replayed 3 frames <ok>")

@pytest.mark.parametrize("name", ["<script>alert(1)</script>"])
def test_hostile_id(name, evidence):
    evidence.attach_text(name, name)

def test_not_a_png(evidence):
    evidence.attach_png("plot", b"GIF89a")
'''


def test_evidence_rows(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(test_ev=f"PNG = {_png()!r}\n" + TESTS)
    run = run_inner()
    run.result.assert_outcomes(passed=3, failed=2)

    hostile = run.rows("test_hostile_id")[0]  # ids and attachment names are escaped everywhere
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile["resultsTableRow"][1]
    assert "<script>alert" not in run.extras_html("test_hostile_id")

    assert "board-0 console" not in run.extras_html("test_passes_quietly")
    failed = run.extras_html("test_fails_loudly")
    assert "board-0 console — last 40 lines" in failed
    assert "I (61) app: line 61" in failed and "I (60) app: line 60\n" not in failed
    assert "&lt;script&gt;x&lt;/script&gt;" in failed and "<script>x" not in failed
    links = [e for r in run.rows("test_fails_loudly") for e in r["extras"]
             if e["format_type"] == "url"]
    assert [link["name"] for link in links] == ["board-0 console"]
    assert (run.reports / links[0]["content"]).resolve().name == "board-0.log"

    extras = [e for r in run.rows("test_attachments") for e in r["extras"]]
    text = run.extras_html("test_attachments")
    assert "server &lt;log&gt; — last 5 lines" in text and "req 45\nreq 49" not in text
    assert "req 45" in text and "req 44" not in text
    assert "replayed 3 frames &lt;ok&gt;" in text
    full = next(run.reports.glob("evidence/*test_attachments*/server_log*.txt"))
    assert full.read_text().count("req ") == 50
    url = next(e for e in extras if e["format_type"] == "url")
    assert url["name"] == "capture &quot;&lt;b&gt;&quot;"
    target = (run.reports / url["content"]).resolve()  # relative to the report, not absolute
    assert not url["content"].startswith("/") and target.name == "run.pcap" and target.is_file()
    png = next(e for e in extras if e["format_type"] == "image")
    assert png["content"] == "data:image/png;base64," + base64.b64encode(_png()).decode()

    run.result.stdout.fnmatch_lines(["*'plot' is not a PNG (missing the PNG signature)*"])
