"""FOTA packages of a build directory: which built images are packaged, where, and the per-test
firmware dirs the server is started on.

Layout: ``<out>/fota/<artifact>/<version>/{manifest.json, firmware-<version>.bin.enc}`` — one
directory per source artifact, because several artifacts share a version (app-v2, selftest-fail
and other-key are all 2.0.0) while the server routes by version. ``index.json`` lists each package
as artifact ``fota-<artifact>`` (role ``fota-package``, its version, path = its manifest).
:func:`firmware_dir_with` assembles ``dest/<version>/`` links for the packages one test wants.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hil.images.fota import MANIFEST_FILE, FotaFormatError, FotaPackage, build_package, load_package, parse_version
from hil.images.index import Index, load_index
from hil.images.keys import KeyStore
from hil.images.mcuboot import McubootFormatError, parse_header

FOTA_DIR = "fota"
FOTA_ROLE = "fota-package"
SIGNING_KEY = "fota-signing-key"
AES_KEY = "fota-aes-key"
# Built images that get a package, and why a scenario wants each one.
PACKAGED: dict[str, str] = {
    "app-v1": "the release a downgraded board updates to",
    "app-v2": "the normal update",
    "downgrade": "0.9.0: the device must refuse it (DOWNGRADE_REFUSED)",
    "selftest-fail": "2.0.0 whose post-update self-test fails: MCUboot reverts it",
    "other-key": "FOTA signature fine, MCUboot signature by attacker-key: the bootloader refuses it",
    "app-v1.9": "1.9.0, offered to a board on 1.10.0: newer as text, older as a number (refused)",
    "app-v1.10": "1.10.0, offered to a board on 1.9.0: older as text, newer as a number (installed)",
}


@dataclass(frozen=True)
class PackagedArtifact:
    """One package written by :func:`package_images`, for the build's index."""

    name: str  # fota-<artifact>
    source: str  # the image artifact it packages
    package: FotaPackage

    @property
    def manifest_path(self) -> Path:
        """The package's manifest (the file the index row points at)."""
        return self.package.directory / MANIFEST_FILE


def package_name(artifact: str) -> str:
    """Index name of the package made from ``artifact``."""
    return f"fota-{artifact}"


def package_images(out: Path, keys: KeyStore, images: dict[str, tuple[bytes, str]]) -> list[PackagedArtifact]:
    """Replace ``out/fota/`` with a package per ``{artifact: (signed image, version)}``."""
    root = Path(out) / FOTA_DIR
    shutil.rmtree(root, ignore_errors=True)  # stale packages of removed artifacts must not linger
    signing_pem = keys.path(SIGNING_KEY).read_bytes()
    fota_key = keys.secret(AES_KEY)
    return [
        PackagedArtifact(
            package_name(name),
            name,
            build_package(data, version, signing_key_pem=signing_pem, fota_key=fota_key, out_dir=root / name),
        )
        for name, (data, version) in images.items()
    ]


def package_intact(directory: Path) -> bool:
    """True when ``directory`` holds a valid manifest and a ciphertext of the size it promises."""
    try:
        load_package(directory)
    except FotaFormatError:
        return False
    return True


def package_image(
    image: Path, version: str, out: Path, keys_dir: Path, *, allow_version_mismatch: bool = False
) -> FotaPackage:
    """Package one MCUboot-signed image file as ``out/<version>/`` (``hil images fota``).

    Refuses a file that is not an MCUboot image, and (unless ``allow_version_mismatch``) one whose
    header version differs from ``version``: the device would install something it was not offered.
    """
    parse_version(version)
    data = Path(image).read_bytes()
    try:
        header = parse_header(data)
    except McubootFormatError as exc:
        raise ValueError(f"{image}: {exc}; package an image signed by imgtool") from None
    if not header.magic_ok:
        raise ValueError(f"{image}: not an MCUboot image (magic {header.magic:#010x}); package a signed image")
    in_header = ".".join(str(v) for v in header.version[:3])
    if in_header != version and not allow_version_mismatch:
        raise ValueError(
            f"{image}: the image header says {in_header}, not {version}; "
            "pass --allow-version-mismatch to package it anyway"
        )
    keys = KeyStore(Path(keys_dir))
    return build_package(
        data,
        version,
        signing_key_pem=keys.path(SIGNING_KEY).read_bytes(),
        fota_key=keys.secret(AES_KEY),
        out_dir=Path(out),
    )


def _package_row_dir(index: Index, name: str) -> tuple[str, Path]:
    """(version, package directory) of package ``name`` or of the package made from image ``name``."""
    wanted = name if name.startswith("fota-") else package_name(name)
    rows = {a.name: a for a in index.by_role(FOTA_ROLE)}
    if wanted not in rows:
        raise KeyError(
            f"no FOTA package {wanted!r} in {index.directory / 'index.json'}; it has: "
            f"{', '.join(rows) or 'none'} (rebuild with `hil images build`)"
        )
    row = rows[wanted]
    return str(row.version), (index.directory / row.path).parent.resolve()


def firmware_dir_with(index_or_out_dir: Index | Path | str, artifacts: Iterable[str], dest: Path) -> Path:
    """Make ``dest`` a server firmware dir holding exactly the packages of ``artifacts``.

    ``artifacts`` are package names (``fota-app-v2``) or the image names they were made from
    (``app-v2``). Each becomes a symlink ``dest/<version>/``; two packages of one version cannot
    share a firmware dir (the server routes by version).
    """
    index = index_or_out_dir if isinstance(index_or_out_dir, Index) else load_index(index_or_out_dir)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    chosen: dict[str, tuple[str, Path]] = {}
    for name in artifacts:
        version, directory = _package_row_dir(index, name)
        if version in chosen:
            raise ValueError(
                f"{name} and {chosen[version][0]} are both version {version}: "
                "use separate firmware dirs (the server offers one package per version)"
            )
        chosen[version] = (name, directory)
    for version, (_, directory) in chosen.items():
        link = dest / version
        if link.is_symlink() or link.exists():
            raise FileExistsError(f"{link} already exists: give firmware_dir_with an empty destination")
        os.symlink(directory, link, target_is_directory=True)
    return dest
