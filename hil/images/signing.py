"""MCUboot signing and verification with imgtool's own command line (the tool a real build uses).

imgtool runs as a subprocess of this interpreter (``python -m imgtool.main``), so the version is
the one installed with the harness whatever ``imgtool`` is first on PATH.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hil.images.layout import MCUBOOT_HEADER_SIZE

IMGTOOL = (sys.executable, "-m", "imgtool.main")
IMGTOOL_TIMEOUT = 60.0  # seconds; signing 1 MiB takes ~0.2 s


class SigningError(RuntimeError):
    """imgtool refused to sign; the message names the image and quotes imgtool."""


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of ``imgtool verify``: exit status and the line that explains it."""

    ok: bool
    message: str


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([*IMGTOOL, *args], capture_output=True, text=True, timeout=IMGTOOL_TIMEOUT, check=False)


def sign_image(
    payload: Path,
    out: Path,
    *,
    version: str,
    key: Path | None,
    slot_size: int,
    header_size: int = MCUBOOT_HEADER_SIZE,
    public_key_format: str = "hash",
    align: int = 4,
) -> None:
    """Wrap ``payload`` in an MCUboot image at ``out``.

    ``key=None`` produces an image with only the SHA-256 TLV (what an unsigned build looks like).
    ``public_key_format="full"`` embeds the whole public key instead of its hash.
    """
    args = [
        "sign",
        "--header-size",
        hex(header_size),
        "--align",
        str(align),
        "--version",
        version,
        "--pad-header",
        "--slot-size",
        hex(slot_size),
    ]
    if key is not None:
        args += ["--key", str(key), "--public-key-format", public_key_format]
    proc = _run([*args, str(payload), str(out)])
    if proc.returncode != 0:
        raise SigningError(
            f"imgtool sign {payload} -> {out} failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-400:]}"
        )


def verify_image(image: Path, key: Path) -> VerifyResult:
    """Run ``imgtool verify -k key image``; ``message`` is imgtool's verdict line, or the last line
    of its error output when it crashes on a malformed image (e.g. a truncated TLV area)."""
    proc = _run(["verify", "-k", str(key), str(image)])
    lines = proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines() or [""]
    return VerifyResult(ok=proc.returncode == 0, message=lines[0] if proc.stdout.strip() else lines[-1])
