"""The server area's harness options, as data (``--hil-server-…`` / ini ``hil_server_…``)."""

from __future__ import annotations

from hil.options import OptionSpec

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "server-url",
        "test a team's own server at this base URL (http(s)://host:port) instead of "
        "starting the built-in reference server; its device registry must hold the lab devices "
        "(firmware_builds/devices.json). Scenarios that read server internals skip",
        metavar="URL",
    ),
    OptionSpec(
        "server-ca",
        "CA certificate (PEM) the boards are provisioned with to trust --hil-server-url over HTTPS",
        metavar="FILE",
    ),
    OptionSpec(
        "server-host",
        "address of this host the built-in server, the capture relay and proxies listen on, put in "
        "the TLS certificate and provision into the boards (default: the IPv4 address of the board's "
        "network_interface; 127.0.0.1 for a board on lo)",
        metavar="ADDRESS",
    ),
    OptionSpec(
        "server-defect",
        "start the built-in server with this defect (see `hil server --list-defects`); repeatable",
        action="append",
        metavar="NAME",
    ),
)
