"""``hil server``: run the reference EcoWatt server standalone (a lab's bench server)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from hil.protocol.upload import MAX_BODY_BYTES
from hil.server.config import (
    DEFAULT_PORT,
    DEFAULT_RATE_LIMIT,
    DEFAULT_RATE_WINDOW_S,
    DeviceKeys,
    DeviceRegistryError,
    ServerConfig,
    load_devices,
)
from hil.server.defects import BY_NAME, describe_catalogue
from hil.server.handle import ServerHandle
from hil.server.tls import generate_test_pki
from hil.wire.classifier import ProfileError
from hil.wire.profile import DEFAULT_PROFILE, WireProfile, load_profile

TOKEN_ENV = "HIL_ADMIN_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hil server``."""
    p = subparsers.add_parser(
        "server",
        help="run the reference EcoWatt upload and OTA server",
        description="Serve the wire profile's upload route (POST /api/upload/data in ecowatt-api), /api/ota/* "
        "and /api/admin/* (PROTOCOL.md). "
        "Prints its URL as the first line of stdout; SIGINT/SIGTERM stop it.",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="listen port, 0 = any free (default %(default)s)")
    p.add_argument("--db", type=Path, help="SQLite database file (created if missing)")
    p.add_argument("--devices", type=Path, help="device registry JSON, e.g. firmware_builds/devices.json")
    p.add_argument(
        "--admin-token",
        default=os.environ.get(TOKEN_ENV),
        help=f"bearer token of the admin API (default: ${TOKEN_ENV}, which keeps it out of `ps`)",
    )
    p.add_argument("--tls-cert", type=Path, help="server certificate (PEM); HTTPS when given with --tls-key")
    p.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    p.add_argument(
        "--firmware-dir",
        type=Path,
        help="FOTA packages to offer, DIR/<version>/manifest.json (e.g. `hil images fota --out DIR`)",
    )
    p.add_argument(
        "--attacker-key",
        type=Path,
        help="RSA key the wrong_signing_key OTA fault signs with (default: a throwaway key), "
        "e.g. firmware_builds/keys/attacker-key.pem",
    )
    p.add_argument(
        "--fota-signing-key",
        type=Path,
        help="the RSA key the FOTA packages were signed with; needed by --wire-profile ecowatt-fw134, "
        "whose OTA signs with PKCS#1 v1.5 when it serves (firmware_builds/keys/fota-signing-key.pem)",
    )
    p.add_argument(
        "--rate-limit",
        type=int,
        default=DEFAULT_RATE_LIMIT,
        help="uploads per device per window, 0 = unlimited (default %(default)s)",
    )
    p.add_argument(
        "--rate-window",
        type=float,
        default=DEFAULT_RATE_WINDOW_S,
        help="rate-limit window in seconds (default %(default)s)",
    )
    p.add_argument(
        "--defect",
        action="append",
        default=[],
        choices=sorted(BY_NAME),
        metavar="NAME",
        help="run with a named server defect (repeatable; --list-defects)",
    )
    p.add_argument(
        "--wire-profile",
        default=DEFAULT_PROFILE,
        metavar="NAME|PATH",
        help="the upload format to serve: a shipped wire profile (%(default)s, ecowatt-fw134; `hil wire list`) "
        "or a profile .toml. A profile with one global key needs no --devices: its lab device is registered "
        "with the profile's TEST ONLY key",
    )
    p.add_argument("--list-defects", action="store_true", help="print the server defect catalogue and exit")
    p.add_argument(
        "--make-test-pki",
        type=Path,
        metavar="DIR",
        help="write a TEST ONLY CA, server cert/key (and MITM ones) into DIR and exit",
    )
    p.set_defaults(func=run)


def profile_registry(wire: WireProfile) -> dict[str, DeviceKeys]:
    """The registry of a global-key profile without --devices: its default device with its TEST ONLY keys."""
    assert wire.test_hmac_key is not None and wire.test_aes_key is not None  # a global profile has them
    return {wire.default_device_id: DeviceKeys(wire.default_device_id, wire.test_hmac_key, wire.test_aes_key)}


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad arguments."""
    if args.list_defects:
        print(describe_catalogue())
        return 0
    if args.make_test_pki:
        pki = generate_test_pki(args.make_test_pki)
        print(
            f"TEST ONLY PKI in {args.make_test_pki}: CA {pki.ca_cert.name}, server {pki.server.cert.name}/"
            f"{pki.server.key.name}, MITM CA {pki.mitm_ca_cert.name}"
        )
        return 0
    try:
        wire = load_profile(args.wire_profile)
    except ProfileError as exc:
        print(f"hil server: {exc}", file=sys.stderr)
        return 2
    needs_devices = wire.key_scope != "global"
    missing = [
        flag
        for flag, value in (
            ("--db", args.db),
            ("--devices", args.devices or not needs_devices),
            ("--admin-token", args.admin_token),
        )
        if not value
    ]
    if missing:
        print(f"hil server: missing {', '.join(missing)} (admin token may come from ${TOKEN_ENV})", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = ServerConfig(
            db_path=args.db,
            devices=load_devices(args.devices) if args.devices else profile_registry(wire),
            admin_token=args.admin_token,
            rate_limit=args.rate_limit,
            rate_window_s=args.rate_window,
            firmware_dir=args.firmware_dir,
            attacker_key=args.attacker_key,
            fota_signing_key=args.fota_signing_key,
            wire=wire,
            max_body_bytes=wire.limits.body_bytes or MAX_BODY_BYTES,
        )
        handle = ServerHandle(
            config, host=args.host, port=args.port, defects=args.defect, tls_cert=args.tls_cert, tls_key=args.tls_key
        )
    except (DeviceRegistryError, ValueError) as exc:
        print(f"hil server: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            handle.start()
        except (OSError, ValueError) as exc:
            print(f"hil server: {exc}", file=sys.stderr)
            return 2
        print(handle.url, flush=True)
        stop.wait()
        handle.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
