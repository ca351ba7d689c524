"""``hil images build``: every image, variant, key and the NVS partition a bench needs, plus
``index.json``.

The build is skipped when its inputs (chip, size, key files, builder sources, tool versions) hash
to the fingerprint recorded in the index and every artifact is still intact. Unsigned payloads and
the NVS image are deterministic; signed images are not byte-stable because RSA-PSS uses a random
salt. Concurrent builds of one directory serialise on a file lock (pytest-xdist workers).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from filelock import FileLock

from hil.images.app_desc import AppDesc
from hil.images.esp_image import MIN_APP_SIZE, build_app_image, build_bootloader_image
from hil.images.fota_build import FOTA_ROLE, PACKAGED, package_images, package_intact
from hil.images.index import INDEX_FILE, TARGET_VIRTUAL, Artifact, Index, IndexMissingError, load_index
from hil.images.keys import KEY_SPECS, KeyStore
from hil.images.layout import MCUBOOT_HEADER_SIZE, FlashLayout, layout_for
from hil.images.nvs_gen import build_nvs, lab_identity
from hil.images.signing import sign_image
from hil.images.variants import RELEASES, VARIANTS, mutate

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("firmware_builds")
DEFAULT_SIZE = 0x100000
DEFAULT_CHIP = "esp32"
LOCK_TIMEOUT = 300.0  # another process building the same directory: a full build takes seconds
_SLOT_MARGIN = 0x2000  # room in a slot for the TLVs and MCUboot's swap trailer
_SOURCES = (
    "app_desc.py",
    "app_keys.py",
    "bootloader_key.py",
    "build.py",
    "esp_image.py",
    "fota.py",
    "fota_build.py",
    "keys.py",
    "layout.py",
    "nvs_gen.py",
    "signing.py",
    "variants.py",
)
_TOOLS = ("esptool", "imgtool", "esp-idf-nvs-partition-gen")


@dataclass(frozen=True)
class BuildResult:
    """What a build did."""

    index: Index
    skipped: bool
    generated_keys: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class _SignJob:
    version: str
    project: str
    key: str | None
    public_key_format: str

    @property
    def stem(self) -> str:
        return f"{self.project}-{self.version}-{self.key or 'unsigned'}-{self.public_key_format}"


def check_size(size: int, layout: FlashLayout) -> None:
    """Refuse app sizes that are too small for the segment layout or do not fit a slot."""
    largest = layout.slot_size - MCUBOOT_HEADER_SIZE - _SLOT_MARGIN
    if not MIN_APP_SIZE <= size <= largest:
        raise ValueError(
            f"--size {size:#x} out of range: an app image is {MIN_APP_SIZE:#x}.."
            f"{largest:#x} bytes for a {layout.slot_size:#x}-byte slot"
        )


def input_fingerprint(keys: KeyStore, chip: str, size: int) -> str:
    """SHA-256 over everything the outputs depend on (key files are hashed, never shown)."""
    here = Path(__file__).parent
    doc = {
        "chip": chip,
        "size": size,
        "sources": {n: hashlib.sha256((here / n).read_bytes()).hexdigest() for n in _SOURCES},
        "tools": {t: importlib.metadata.version(t) for t in _TOOLS},
        "keys": {n: hashlib.sha256(keys.path(n).read_bytes()).hexdigest() for n in KEY_SPECS},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _intact(out: Path, fingerprint: str) -> Index | None:
    """The existing index if it was built from the same inputs and no artifact changed since."""
    try:
        index = load_index(out)
    except (IndexMissingError, ValueError):
        return None
    if index.input_fingerprint != fingerprint:
        return None
    for art in index.artifacts:
        path = out / art.path
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != art.sha256:
            log.info("rebuilding %s: %s is missing or changed", out, art.path)
            return None
        if art.role == FOTA_ROLE and not package_intact(path.parent):
            log.info("rebuilding %s: the ciphertext of FOTA package %s is missing or cut", out, art.path)
            return None
    return index


def build_images(
    out: Path | str = DEFAULT_OUT,
    *,
    size: int = DEFAULT_SIZE,
    chip: str = DEFAULT_CHIP,
    force: bool = False,
    keys_dir: Path | str | None = None,
) -> BuildResult:
    """Build (or confirm up to date) every artifact in ``out`` and return the index.

    Keys live in ``keys_dir`` (default ``out/keys``): point another chip's build at the committed
    ``firmware_builds/keys`` so every build trusts the same TEST ONLY keys.
    """
    started = time.monotonic()
    out = Path(out)
    layout = layout_for(chip)
    check_size(size, layout)
    out.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out / ".build.lock"), timeout=LOCK_TIMEOUT):
        keys = KeyStore(Path(keys_dir) if keys_dir is not None else out / "keys")
        generated = tuple(keys.ensure())
        for name in generated:
            log.warning(
                "generated new TEST ONLY key %s (fingerprint %s) in %s: commit it",
                name,
                keys.fingerprint(name),
                keys.directory,
            )
        fingerprint = input_fingerprint(keys, chip, size)
        current = None if force else _intact(out, fingerprint)
        if current is not None:
            return BuildResult(current, True, generated, time.monotonic() - started)
        index = _build(out, keys, layout, size, fingerprint)
        index.save()
    return BuildResult(index, False, generated, time.monotonic() - started)


def _build(out: Path, keys: KeyStore, layout: FlashLayout, size: int, fingerprint: str) -> Index:
    chip = layout.chip
    work = out / ".work"
    shutil.rmtree(work, ignore_errors=True)
    for sub in (work, out / "payloads", out / "variants"):
        sub.mkdir(parents=True, exist_ok=True)
    arts = _Artifacts(out, chip)

    boot = build_bootloader_image(keys.public_der("mcuboot-signing-key"), chip)
    arts.add(
        "bootloader",
        "bootloader.bin",
        boot,
        role="bootloader",
        offset=layout.bootloader,
        note=f"MCUboot; trusts mcuboot-signing-key {keys.fingerprint('mcuboot-signing-key')}",
    )

    jobs = {_SignJob(r.version, r.project, "mcuboot-signing-key", "hash"): None for r in RELEASES}
    jobs.update({_SignJob(v.version, v.project, v.sign_with, v.public_key_format): None for v in VARIANTS})
    payloads = {(j.version, j.project) for j in jobs}
    fota_pem = (
        keys.rsa_private("fota-signing-key")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for version, project in sorted(payloads):
        data = build_app_image(AppDesc(version=version, project_name=project), chip, size, fota_pem)
        (out / "payloads" / f"{project}-{version}.bin").write_bytes(data)

    def sign(job: _SignJob) -> bytes:
        target = work / f"{job.stem}.bin"
        sign_image(
            out / "payloads" / f"{job.project}-{job.version}.bin",
            target,
            version=job.version,
            key=keys.path(job.key) if job.key else None,
            slot_size=layout.slot_size,
            public_key_format=job.public_key_format,
        )
        return target.read_bytes()

    with ThreadPoolExecutor() as pool:  # imgtool runs as subprocesses: threads overlap them
        signed = dict(zip(jobs, pool.map(sign, jobs), strict=True))

    to_package: dict[str, tuple[bytes, str]] = {}
    for rel in RELEASES:
        data = signed[_SignJob(rel.version, rel.project, "mcuboot-signing-key", "hash")]
        arts.add(
            rel.name, f"{rel.name}.bin", data, role="app", version=rel.version, offset=layout.primary_slot, boots=True
        )
        to_package[rel.name] = (data, rel.version)
    for var in VARIANTS:
        base = signed[_SignJob(var.version, var.project, var.sign_with, var.public_key_format)]
        data, how = mutate(base, var.mutation)
        arts.add(
            var.name,
            f"variants/{var.name}.bin",
            data,
            role="variant",
            version=var.version,
            offset=layout.primary_slot,
            boots=var.boots,
            note="; ".join(filter(None, (var.why, how))),
        )
        to_package[var.name] = (data, var.version)
    for pkg in package_images(out, keys, {n: to_package[n] for n in PACKAGED}):
        arts.add_file(
            pkg.name,
            pkg.manifest_path,
            role=FOTA_ROLE,
            version=pkg.package.manifest.version,
            note=f"FOTA package of {pkg.source} ({pkg.package.manifest.total_chunks} chunks): {PACKAGED[pkg.source]}",
        )

    identity = lab_identity(keys)
    nvs = build_nvs(identity, out / "nvs.bin", layout.nvs_size)
    arts.add(
        "nvs",
        "nvs.bin",
        nvs.read_bytes(),
        role="nvs",
        offset=layout.nvs,
        note=f"TEST ONLY identity {identity.device_id}, nonce {identity.nonce}, {identity.server_url}",
    )
    registry = {"comment": "TEST ONLY device keys (hil harness)", "devices": [identity.registry_entry()]}
    arts.add(
        "devices",
        "devices.json",
        (json.dumps(registry, indent=2) + "\n").encode(),
        role="device-registry",
        note="server --devices file for the lab identities",
    )
    for name in KEY_SPECS:
        arts.add_existing(name, keys.path(name), role=name, fingerprint=keys.fingerprint(name))
    shutil.rmtree(work)
    return Index(out, chip, fingerprint, tuple(arts.items), target=TARGET_VIRTUAL)  # filler-code apps


class _Artifacts:
    """Writes artifact files and collects their index rows."""

    def __init__(self, out: Path, chip: str) -> None:
        self.out = out
        self.chip = chip
        self.items: list[Artifact] = []

    def add(
        self,
        name: str,
        rel: str,
        data: bytes,
        *,
        role: str,
        version: str | None = None,
        offset: int | None = None,
        boots: bool | None = None,
        note: str = "",
    ) -> None:
        """Write ``data`` to ``out/rel`` and index it."""
        path = self.out / rel
        if not (path.is_file() and path.read_bytes() == data):  # keep mtimes of unchanged files
            path.write_bytes(data)
        self._row(name, rel, data, role, version, offset, boots, note, None)

    def add_existing(self, name: str, path: Path, *, role: str, fingerprint: str) -> None:
        """Index a file that is already in place (a key)."""
        rel = Path(os.path.relpath(path, self.out)).as_posix()  # keys may live outside ``out``
        self._row(name, rel, path.read_bytes(), role, None, None, None, "TEST ONLY", fingerprint)

    def add_file(self, name: str, path: Path, *, role: str, version: str, note: str) -> None:
        """Index a file another writer put under ``out`` (a FOTA package's manifest)."""
        rel = Path(os.path.relpath(path, self.out)).as_posix()
        self._row(name, rel, path.read_bytes(), role, version, None, None, note, None)

    def _row(
        self,
        name: str,
        rel: str,
        data: bytes,
        role: str,
        version: str | None,
        offset: int | None,
        boots: bool | None,
        note: str,
        fingerprint: str | None,
    ) -> None:
        self.items.append(
            Artifact(
                name=name,
                path=rel,
                role=role,
                version=version,
                offset=offset,
                boots=boots,
                chip=self.chip,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                note=note,
                fingerprint=fingerprint,
            )
        )


def index_path(out: Path | str = DEFAULT_OUT) -> Path:
    """Where ``build_images(out)`` writes its index."""
    return Path(out) / INDEX_FILE


def load_or_build(directory: Path, *, chip: str = DEFAULT_CHIP, keys_dir: Path | None = None) -> Index:
    """The index in ``directory``, (re)building it when `hil images build` made it and its inputs
    changed (or it is missing).

    A bench that drops its own images and a hand-written index.json (no input fingerprint) into
    the directory gets them loaded untouched.
    """
    try:
        index = load_index(directory)
    except IndexMissingError:
        index = None
    if index is None or index.input_fingerprint:
        index = build_images(directory, chip=chip, keys_dir=keys_dir).index
    return index
