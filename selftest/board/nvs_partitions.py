"""NVS partitions made by Espressif's esp-idf-nvs-partition-gen (the real peer) from CSV rows, for
the provisioning-merge self-tests: what a firmware stored on the board before the harness provisions."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

from hil.images.nvs_gen import NVS_GEN, NVS_GEN_TIMEOUT, NVS_SIZE

HEADER = ("key", "type", "encoding", "value")


def generate_partition(rows: list[tuple[str, str, str, str]], out: Path) -> bytes:
    """The partition esp-idf-nvs-partition-gen makes from *rows* (without the CSV header), at *out*."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([HEADER, *rows])
    source = out.with_suffix(".csv")
    source.write_text(text.getvalue())
    subprocess.run(
        [*NVS_GEN, "generate", str(source), str(out), hex(NVS_SIZE)],
        check=True,
        capture_output=True,
        timeout=NVS_GEN_TIMEOUT,
    )
    return out.read_bytes()
