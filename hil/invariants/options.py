"""The invariants' harness option, as data (``--hil-no-invariants`` / ini ``hil_no_invariants``)."""

from __future__ import annotations

from hil.options import OptionSpec

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "no-invariants",
        "do not check the invariants after each scenario (server records vs answers, nonce committed "
        "before sending and never decreasing, no secret on the console, the OTA slots' images); for "
        "comparing what a scenario alone catches",
        default=False,
        action="store_true",
    ),
)
