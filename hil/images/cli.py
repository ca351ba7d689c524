"""``hil images``: ``build`` every firmware artifact into a directory, ``info`` on any one file,
``fota`` to package one signed image for the OTA server."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hil.images.build import DEFAULT_CHIP, DEFAULT_OUT, DEFAULT_SIZE, build_images
from hil.images.fota import FotaFormatError
from hil.images.fota_build import package_image
from hil.images.inspect import describe
from hil.images.keys import KeyFileError
from hil.images.layout import LAYOUTS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hil images build``, ``hil images info`` and ``hil images fota``."""
    images = subparsers.add_parser("images", help="build signed images, variants, NVS and TEST ONLY keys")
    sub = images.add_subparsers(dest="images_command", metavar="ACTION", required=True)

    build = sub.add_parser("build", help="build everything into DIR and write DIR/index.json")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default %(default)s)")
    build.add_argument(
        "--size",
        type=lambda s: int(s, 0),
        default=DEFAULT_SIZE,
        help="app image size in bytes, e.g. 0x100000 (default %(default)#x)",
    )
    build.add_argument("--chip", choices=sorted(LAYOUTS), default=DEFAULT_CHIP)
    build.add_argument(
        "--keys",
        type=Path,
        default=None,
        help="TEST ONLY key directory (default OUT/keys; share firmware_builds/keys across chips)",
    )
    build.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    build.set_defaults(func=_build)

    info = sub.add_parser("info", help="say what a file is (image, variant, NVS, key, index)")
    info.add_argument("path", type=Path)
    info.set_defaults(func=_info)

    fota = sub.add_parser("fota", help="package a signed image as OUT/VERSION/ (manifest + encrypted firmware)")
    fota.add_argument("--image", type=Path, required=True, help="MCUboot-signed image, e.g. firmware_builds/app-v2.bin")
    fota.add_argument("--version", required=True, help="version the server offers, x.y.z")
    fota.add_argument("--out", type=Path, required=True, help="server firmware dir (hil server --firmware-dir)")
    fota.add_argument(
        "--keys",
        type=Path,
        default=DEFAULT_OUT / "keys",
        help="TEST ONLY keys: fota-signing-key.pem and fota-aes-key.hex (default %(default)s)",
    )
    fota.add_argument(
        "--allow-version-mismatch", action="store_true", help="package even if the image header carries another version"
    )
    fota.set_defaults(func=_fota)


def _build(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = build_images(args.out, size=args.size, chip=args.chip, force=args.force, keys_dir=args.keys)
    state = "up to date" if result.skipped else "built"
    print(
        f"{args.out}: {state} in {result.seconds:.2f} s, {len(result.index.artifacts)} artifacts "
        f"for {result.index.chip} (index {args.out / 'index.json'})"
    )
    for art in result.index.artifacts:
        offset = "-" if art.offset is None else f"{art.offset:#x}"
        extra = f"fingerprint {art.fingerprint}" if art.fingerprint else f"boots={art.boots}"
        print(f"  {art.name:<20} {art.role:<20} {art.version or '-':<6} {offset:>9} {art.size:>8}  {extra}")
    return 0


def _info(args: argparse.Namespace) -> int:
    if not args.path.is_file():
        print(f"{args.path}: no such file")
        return 2
    print("\n".join(describe(args.path)))
    return 0


def _fota(args: argparse.Namespace) -> int:
    try:
        package = package_image(
            args.image, args.version, args.out, args.keys, allow_version_mismatch=args.allow_version_mismatch
        )
    except (OSError, FotaFormatError, KeyFileError, ValueError) as exc:
        print(f"hil images fota: {exc}")
        return 2
    m = package.manifest
    print(
        f"{package.directory}: {m.file_name}, {m.file_size} bytes plaintext, {m.total_chunks} chunks of "
        f"{m.chunk_size}, sha256 {m.sha256_hash}"
    )
    return 0
