"""The network area's harness options, as data (``--hil-capture-…`` / ini ``hil_capture_…``)."""

from __future__ import annotations

from hil.options import OptionSpec

CAPTURE_MODES = ("auto", "relay")

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "capture-mode",
        "how tests capture board traffic: auto (sniff the board's interface when "
        "privileged, else a recording relay) or relay (always the relay, e.g. to check the "
        "unprivileged path as root)",
        default="auto",
        metavar="MODE",
    ),
)
