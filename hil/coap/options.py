"""The CoAP area's harness options, as data (``--hil-coap-…`` / ini ``hil_coap_…``)."""

from __future__ import annotations

from hil.options import OptionSpec

DEFAULT_PSK_ID_ENV = "HIL_COAP_PSK_ID"
DEFAULT_PSK_ENV = "HIL_COAP_PSK"

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "coap-host",
        "address of the board's CoAP (UDP 5683) and CoAPS (UDP 5684) server (default: the board's network_address)",
        metavar="ADDRESS",
    ),
    OptionSpec("coap-port", "the board's plain CoAP port", default=5683, type=int, metavar="PORT"),
    OptionSpec("coaps-port", "the board's CoAPS (DTLS) port", default=5684, type=int, metavar="PORT"),
    OptionSpec(
        "coap-psk-id-env",
        "environment variable holding the CoAPS PSK identity of a real board (virtual boards use their "
        "TEST ONLY provisioning identity unless it is set)",
        default=DEFAULT_PSK_ID_ENV,
        metavar="VAR",
    ),
    OptionSpec(
        "coap-psk-env",
        "environment variable holding the CoAPS pre-shared key of a real board (never a file or an option "
        "value: it would end up in shell history and the report)",
        default=DEFAULT_PSK_ENV,
        metavar="VAR",
    ),
)
