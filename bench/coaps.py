"""CoAPS handshake time (median, p95 over N handshakes) and CoAP vs CoAPS bytes per request, beside
the SOP's 3 s target: against libcoap's coap-server (OpenSSL and GnuTLS builds, always available)
and against a virtual board's firmware (``GET /sensor``), provisioned by the harness's own fixtures
in a pytest process of its own (``coap_endpoints``, as a scenario gets it).

    python bench/coaps.py [--handshakes 20] [--requests 10] [--no-board]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from hil.coap.endpoint import CoapEndpoint
from hil.coap.libcoap import LibcoapServer
from hil.coap.measure import HANDSHAKE_TARGET_S, measure_handshakes, measure_request_bytes

ROOT = Path(__file__).resolve().parents[1]
IDENTITY, KEY = "iotlab2024", "secretkey123456"  # the SOP's documented PSK: TEST ONLY
BOARD_TEST = """
import json, os
from hil.coap.errors import CoapError
from hil.coap.measure import measure_handshakes, measure_request_bytes

def test_bench_coaps(coap_endpoints):
    out = os.environ["HIL_BENCH_COAPS_OUT"]
    try:
        figures = measure(coap_endpoints.coap, coap_endpoints.coaps)
    except CoapError as exc:
        figures = {"unavailable": str(exc)}
    with open(out, "w") as f:
        json.dump(figures, f)
"""


def measure(plain: CoapEndpoint, secure: CoapEndpoint, path: str, handshakes: int, requests: int) -> dict:
    """The figures of one peer, as JSON-able numbers."""
    hs = measure_handshakes(secure, handshakes)
    clear = measure_request_bytes(plain, path, requests)
    sealed = measure_request_bytes(secure, path, requests)
    return {
        "median_s": hs.median_s,
        "p95_s": hs.p95_s,
        "min_s": min(hs.durations_s),
        "max_s": max(hs.durations_s),
        "handshakes": len(hs.durations_s),
        "cipher": hs.cipher,
        "handshake_bytes": [hs.wire.bytes_sent, hs.wire.bytes_received],
        "handshake_datagrams": [hs.wire.datagrams_sent, hs.wire.datagrams_received],
        "coap_bytes": [clear.sent, clear.received],
        "coaps_bytes": [sealed.sent, sealed.received],
    }


def board_figures(handshakes: int, requests: int) -> dict:
    """The virtual board's figures, from a pytest process with the harness's fixtures."""
    with tempfile.TemporaryDirectory(prefix="hil-bench-coaps-") as tmp:
        test = Path(tmp, "test_bench_coaps.py")
        test.write_text(
            textwrap.dedent(BOARD_TEST) + f"\n\ndef measure(plain, secure):\n"
            f"    from bench_coaps_measure import measure as m\n"
            f"    return m(plain, secure, 'sensor', {handshakes}, {requests})\n"
        )
        Path(tmp, "bench_coaps_measure.py").write_text(Path(__file__).read_text())
        out = Path(tmp, "figures.json")
        env = {**os.environ, "HIL_BENCH_COAPS_OUT": str(out)}
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            str(test),
            f"--rootdir={ROOT}",
            f"-c={ROOT / 'pytest.ini'}",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "--hil-virtual",
            f"--hil-report-dir={tmp}/report",
            f"--hil-logs-dir={tmp}/logs",
        ]
        result = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
        if not out.exists():
            return {"unavailable": f"pytest exited {result.returncode} before measuring:\n{result.stdout[-2000:]}"}
        return json.loads(out.read_text())


def show(name: str, figures: dict) -> None:
    if "unavailable" in figures:
        print(f"{name}: virtual board has no CoAPS yet ({figures['unavailable'].splitlines()[0][:200]})")
        return
    verdict = "meets" if figures["p95_s"] < HANDSHAKE_TARGET_S else "MISSES"
    hs_sent, hs_recv = figures["handshake_bytes"]
    hs_dg = figures["handshake_datagrams"]
    clear, sealed = figures["coap_bytes"], figures["coaps_bytes"]
    print(f"{name}  ({figures['cipher']})")
    print(
        f"  handshake  median {figures['median_s'] * 1000:7.2f} ms  p95 {figures['p95_s'] * 1000:7.2f} ms  "
        f"(min {figures['min_s'] * 1000:.2f}, max {figures['max_s'] * 1000:.2f}, n={figures['handshakes']})  "
        f"target < {HANDSHAKE_TARGET_S:.0f} s: {verdict}"
    )
    print(f"  handshake  {hs_sent} B sent in {hs_dg[0]} datagrams, {hs_recv} B received in {hs_dg[1]}")
    print(
        f"  per GET    CoAP {clear[0]:.0f} + {clear[1]:.0f} B   CoAPS {sealed[0]:.0f} + {sealed[1]:.0f} B   "
        f"(DTLS adds {sealed[0] + sealed[1] - clear[0] - clear[1]:.0f} B a request/response)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--no-board", action="store_true", help="only libcoap's coap-server")
    args = parser.parse_args()
    print(f"CoAPS (DTLS 1.2, PSK) handshake and bytes per request; SOP target: handshake < {HANDSHAKE_TARGET_S:.0f} s")
    for flavour in ("openssl", "gnutls"):
        with LibcoapServer(KEY, hint=IDENTITY, only_identity=IDENTITY, flavour=flavour) as server:
            figures = measure(server.coap(), server.coaps(IDENTITY), "time", args.handshakes, args.requests)
        show(f"libcoap coap-server-{flavour}, loopback, GET /time", figures)
    if not args.no_board:
        show("virtual board, GET /sensor", board_figures(args.handshakes, args.requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
