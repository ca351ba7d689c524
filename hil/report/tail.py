"""The last lines of a (possibly large, possibly still growing) text file, read from its end."""

from __future__ import annotations

import os
from pathlib import Path

_BLOCK = 8192


def tail_lines(path: Path, count: int) -> str:
    """Return the last ``count`` lines of ``path`` (decoded as UTF-8, bad bytes replaced).

    Reads backwards in blocks so a multi-megabyte console log costs a few KiB, not the file.
    """
    if count <= 0:
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        data = b""
        # count+1 newlines: the file's trailing newline must not eat one of the lines asked for
        while pos > 0 and data.count(b"\n") <= count:
            step = min(_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-count:])
