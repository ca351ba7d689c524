"""The virtual board prints only lines a real Espressif-port MCUboot prints: every ``[chip] [LVL]``
line of its boot chain, in every boot path (clean boot, each refused variant, an erased slot, test /
perm / revert swaps, a refused secondary, a swap completed after a power cut, the ESP32-C6), matches
one of the C format strings read in MCUboot's sources (``console/real_mcuboot_output.toml``, each
with its source). Scenarios infer what the real bootloader leaves unsaid, so a sim-only line (such
as the verification line the board used to print) would let them pass here and fail on a bench."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.sim.firmware import bootctl
from sim_boot.fakes import FakeFlash, FakeRuntime, _write, boot, install, make_bootloader

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

FIXTURE = Path(__file__).resolve().parents[1] / "console" / "real_mcuboot_output.toml"
PREFIXED = re.compile(r"^\[(?P<chip>esp32\w*)\] \[(?P<level>INF|WRN|ERR|DBG)\] (?P<message>.*)$")
CONVERSIONS = {"%s": ".+", "%d": "-?[0-9]+", "%u": "[0-9]+", "%x": "[0-9a-f]+", "%zx": "[0-9a-f]+"}


def printf_regex(fmt: str) -> re.Pattern[str]:
    """The lines C's printf can make of ``fmt`` (the conversions MCUboot's log calls use)."""
    parts = re.split(r"(%zx|%[sdux])", fmt)
    return re.compile("".join(CONVERSIONS.get(part, re.escape(part)) for part in parts))


REAL_FORMATS = [(f["level"], f["fmt"], printf_regex(f["fmt"])) for f in tomllib.loads(FIXTURE.read_text())["format"]]


def unknown_lines(lines: list[str]) -> list[str]:
    """The MCUboot-prefixed lines no real format produces."""
    out = []
    for line in lines:
        found = PREFIXED.match(line)
        if found and not any(
            level == found["level"] and regex.fullmatch(found["message"]) for level, _, regex in REAL_FORMATS
        ):
            out.append(line)
    return out


def test_formats_convert_like_printf():
    regex = printf_regex("Loading image %d - slot %d from flash, area id: %d")
    assert regex.fullmatch("Loading image 0 - slot 0 from flash, area id: 1")
    assert not regex.fullmatch("Loading image 0 - slot 0 from flash")
    assert unknown_lines(["[esp32] [INF] Image 0: SHA-256 OK, RSA-2048 PSS signature OK, key hash 01"]), (
        "the sim-only verification line must not pass for a real one"
    )
    assert unknown_lines(["[esp32] [ERR] Boot source: none"]), "the level is part of the format"


def boot_paths(artifacts) -> Iterator[tuple[str, FakeRuntime]]:
    """Every boot path of the virtual MCUboot, each as the runtime that ran it."""
    flash = FakeFlash()
    install(flash, artifacts)
    yield "clean boot", boot(flash)
    for variant in ("unsigned", "other-key", "bitflip", "truncated", "bad-magic"):
        flash = FakeFlash()
        install(flash, artifacts, primary=variant)
        yield f"primary {variant}", boot(flash)
    flash = FakeFlash()
    install(flash, artifacts, primary=None)
    yield "erased primary", boot(flash)
    for permanent in (False, True):
        flash = FakeFlash()
        install(flash, artifacts, primary="v1", secondary="v2")
        bootctl.request_upgrade(FakeRuntime(flash), permanent=permanent)
        yield f"{'perm' if permanent else 'test'} swap", boot(flash)
        yield "next boot (revert or none)", boot(flash)
    flash = FakeFlash()
    install(flash, artifacts, primary="v1", secondary="other-key")
    bootctl.request_upgrade(FakeRuntime(flash), permanent=False)
    yield "refused secondary", boot(flash)
    flash = FakeFlash()
    install(flash, artifacts, primary="v1", secondary="v2")
    bootctl.request_upgrade(FakeRuntime(flash), permanent=False)
    yield "swap cut by power", boot(flash, cut=("swap.sector", 5))
    yield "swap completed after the cut", boot(flash)
    flash = FakeFlash()
    install(flash, artifacts, bootloader=False)
    _write(flash, 0x0, make_bootloader(artifacts.trusted_der, chip_id=13))
    yield "esp32c6", _boot_c6(flash)


def _boot_c6(flash: FakeFlash) -> FakeRuntime:
    from hil.sim.boot import run_from_flash
    from hil.sim.firmware import run_app
    from hil.sim.runtime import Halted

    rt = FakeRuntime(flash, chip="esp32c6")
    with pytest.raises(Halted):
        run_from_flash(rt, run_app)
    return rt


def test_virtual_board_prints_only_real_mcuboot_lines(artifacts):
    seen = 0
    for path, rt in boot_paths(artifacts):
        assert not unknown_lines(rt.lines), f"{path}: lines no real MCUboot prints: {unknown_lines(rt.lines)}"
        seen += sum(1 for line in rt.lines if PREFIXED.match(line))
    assert seen > 100  # the paths did run the bootloader


def test_every_boot_path_reaches_its_real_ending(artifacts):
    """Each path ends the way the real bootloader ends it: a load or 'Unable to find bootable image'."""
    for path, rt in boot_paths(artifacts):
        if path == "swap cut by power":
            continue
        endings = [line for line in rt.lines if "Loading image 0" in line or "Unable to find bootable" in line]
        assert len(endings) == 1, f"{path}: {endings}"
