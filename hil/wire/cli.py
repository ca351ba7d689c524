"""``hil wire``: the wire profiles — list them, print one, or classify a server's reply with one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the profile module is imported when a subcommand runs (hil --help stays cheap)
    from hil.wire.profile import WireProfile


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hil wire list|show|classify``."""
    p = subparsers.add_parser(
        "wire",
        help="list, show or try the wire profiles (upload/OTA formats)",
        description="Wire profiles describe a team's upload and OTA format (routes, envelope, MAC, nonce "
        "rules, limits, how to read replies). Use one with --hil-wire-profile NAME|PATH.",
    )
    sub = p.add_subparsers(dest="wire_command", required=True)
    sub.add_parser("list", help="the shipped profiles").set_defaults(func=_list)
    show = sub.add_parser("show", help="print a profile as a reviewer reads it")
    show.add_argument("profile", help="a shipped profile name or a path to a .toml")
    show.set_defaults(func=_show)
    classify = sub.add_parser("classify", help="what a reply means under a profile (status and body file)")
    classify.add_argument("profile", help="a shipped profile name or a path to a .toml")
    classify.add_argument("status", type=int, help="the HTTP status of the reply")
    classify.add_argument("body", type=Path, help="a file holding the reply body ('-' for stdin)")
    classify.set_defaults(func=_classify)


def _load(name: str) -> WireProfile | None:
    from hil.wire.classifier import ProfileError
    from hil.wire.profile import load_profile

    try:
        return load_profile(name, rootdir=Path.cwd())
    except ProfileError as exc:
        print(f"hil wire: {exc}", file=sys.stderr)
        return None


def _list(args: argparse.Namespace) -> int:
    from hil.wire.profile import load_profile, shipped_profiles

    for name in shipped_profiles():
        print(f"{name}: {load_profile(name).description}")
    return 0


def _show(args: argparse.Namespace) -> int:
    profile = _load(args.profile)
    if profile is None:
        return 2
    print(profile.describe())
    return 0


def _classify(args: argparse.Namespace) -> int:
    from hil.wire.classifier import mismatch_hint

    profile = _load(args.profile)
    if profile is None:
        return 2
    try:
        body = sys.stdin.buffer.read() if str(args.body) == "-" else args.body.read_bytes()
    except OSError as exc:
        print(f"hil wire: cannot read the reply body {args.body}: {exc.strerror}", file=sys.stderr)
        return 2
    verdict = profile.classify(args.status, body)
    print(verdict.describe())
    hint = mismatch_hint(verdict, method=profile.upload_method, path=profile.upload_route, profile=profile.name)
    if hint:
        print(hint)
    return 0
