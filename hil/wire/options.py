"""The wire area's harness options, as data (``--hil-wire-…`` / ini ``hil_wire_…``)."""

from __future__ import annotations

from hil.options import OptionSpec

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "wire-profile",
        "the upload/OTA wire format the board and server speak: a shipped profile (ecowatt-api, "
        "ecowatt-fw134; `hil wire list`) or a path to a team's own profile .toml",
        default="ecowatt-api",
        metavar="NAME|PATH",
    ),
    OptionSpec(
        "no-flood",
        "skip the scenarios that send bursts of requests (rate limit, parallel replays, floods) "
        "to the server under test, e.g. a shared production-like server",
        default=False,
        action="store_true",
    ),
)
