"""Test tiers: the ``slow`` marker's long runs (hundreds of uploads, several OTA cycles) are skipped
unless ``--hil-slow`` (ini ``hil_slow``) asks for them, which the nightly job does. A skipped one says
how to run it, so the report shows the tier as not run, never as passed."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from hil.options import OptionSpec

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "slow",
        "run the slow tier too (@pytest.mark.slow: hundreds of uploads, several OTA cycles on one board; "
        "minutes on a real bench): the nightly job's tier",
        default=False,
        action="store_true",
    ),
)
MARKER = "slow: a long-run scenario, skipped unless --hil-slow (the nightly tier)"


def skip_slow(items: Iterable[pytest.Item], run_slow: bool) -> None:
    """Mark the slow tier's items skipped unless *run_slow*."""
    if run_slow:
        return
    skip = pytest.mark.skip(reason="slow tier: run it with --hil-slow (the nightly job does)")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
