"""``index.json``: the catalogue of built artifacts the harness flashes and the scenarios name.

``{"schema": 1, "chip": .., "target": .., "input_fingerprint": .., "artifacts": [{"name", "path"
(relative to the index), "role", "version", "offset", "boots", "chip", "sha256", "size", "note",
"fingerprint"}]}``. ``offset`` is the flash offset of flashable artifacts (else ``null``);
``boots`` says whether a correct bootloader accepts an image (``null`` for non-images). A
``fota-package`` row points at the package's ``manifest.json`` (see ``hil.images.fota_build``).

``target`` says what the images run on: ``"virtual"`` for the set ``hil images build`` makes (its
apps are random filler code around a valid image structure: only the virtual board runs them),
``"device"`` for a team's real firmware build (the default of a hand-written index without the
field). An index without the field but with an ``input_fingerprint`` was made by ``hil images
build`` before the field existed: virtual.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

INDEX_FILE = "index.json"
SCHEMA = 1
TARGET_VIRTUAL = "virtual"  # built by `hil images build`: runs on the virtual board only
TARGET_DEVICE = "device"  # a team's firmware build: runs on real ESP32 boards
ROLES = (
    "bootloader",
    "app",
    "nvs",
    "variant",
    "mcuboot-signing-key",
    "fota-signing-key",
    "fota-aes-key",
    "attacker-key",
    "device-master-key",
    "device-registry",
    "fota-package",
)


class IndexMissingError(FileNotFoundError):
    """No ``index.json`` where one was expected."""


class ArtifactNotFound(KeyError):
    """A name or role that the index does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class Artifact:
    """One built file and what the harness needs to know about it."""

    name: str
    path: str
    role: str
    version: str | None
    offset: int | None
    boots: bool | None
    chip: str
    sha256: str
    size: int
    note: str = ""
    fingerprint: str | None = None  # keys only: a SHA-256 prefix, never material

    @property
    def flashable(self) -> bool:
        """True when the artifact has a flash offset."""
        return self.offset is not None


@dataclass(frozen=True)
class FlashItem:
    """One write of a flash plan."""

    offset: int
    path: Path
    name: str
    size: int


@dataclass(frozen=True)
class Index:
    """The artifacts of one build directory."""

    directory: Path
    chip: str
    input_fingerprint: str
    artifacts: tuple[Artifact, ...] = field(default=())
    target: str = TARGET_DEVICE

    @property
    def virtual_only(self) -> bool:
        """True for images only the virtual board runs (``hil images build``'s filler-code apps)."""
        return self.target == TARGET_VIRTUAL

    @property
    def index_path(self) -> Path:
        """The ``index.json`` this index was read from (or is saved to)."""
        return self.directory / INDEX_FILE

    def get(self, name: str) -> Artifact:
        """The artifact called ``name``."""
        for art in self.artifacts:
            if art.name == name:
                return art
        raise ArtifactNotFound(
            f"no artifact {name!r} in {self.directory / INDEX_FILE}; it has: "
            f"{', '.join(a.name for a in self.artifacts)}"
        )

    def by_role(self, role: str) -> list[Artifact]:
        """Every artifact with ``role``, in index order (empty list when none)."""
        if role not in ROLES:
            raise ArtifactNotFound(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
        return [a for a in self.artifacts if a.role == role]

    def path(self, name: str) -> Path:
        """Absolute path of artifact ``name``."""
        return (self.directory / self.get(name).path).resolve()

    def flash_plan(self, names: Iterable[str]) -> list[FlashItem]:
        """Writes for ``names`` ordered by offset; refuses non-flashable artifacts and overlaps."""
        items = []
        for name in names:
            art = self.get(name)
            if art.offset is None:
                raise ValueError(f"artifact {name!r} (role {art.role}) has no flash offset: it is not flashable")
            items.append(FlashItem(art.offset, self.path(name), name, art.size))
        items.sort(key=lambda i: i.offset)
        for a, b in itertools.pairwise(items):
            if a.offset + a.size > b.offset:
                raise ValueError(
                    f"flash plan overlaps: {a.name!r} at {a.offset:#x} (+{a.size:#x}) "
                    f"and {b.name!r} at {b.offset:#x}; flash them separately"
                )
        return items

    def to_json(self) -> dict:
        """The JSON document (paths stay relative to the index)."""
        return {
            "schema": SCHEMA,
            "chip": self.chip,
            "target": self.target,
            "input_fingerprint": self.input_fingerprint,
            "artifacts": [asdict(a) for a in self.artifacts],
        }

    def save(self) -> Path:
        """Write ``index.json`` atomically (readers never see a half-written index)."""
        target = self.directory / INDEX_FILE
        tmp = target.with_name(f".{INDEX_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        return target


def load_index(directory: Path | str) -> Index:
    """Read ``directory/index.json``; raises ``IndexMissingError`` saying how to build it."""
    directory = Path(directory)
    target = directory / INDEX_FILE
    try:
        doc = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexMissingError(
            f"{target} not found: build the images first with `hil images build --out {directory}`"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{target} is not valid JSON ({exc}): rebuild with `hil images build --out {directory} --force`"
        ) from None
    if doc.get("schema") != SCHEMA:
        raise ValueError(
            f"{target} has schema {doc.get('schema')!r}, this harness reads {SCHEMA}: "
            f"rebuild with `hil images build --out {directory} --force`"
        )
    try:
        artifacts = tuple(Artifact(**a) for a in doc["artifacts"])
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"{target}: malformed artifact entry ({exc}); rebuild with `hil images build --out {directory} --force`"
        ) from None
    fingerprint = doc.get("input_fingerprint") or ""
    runs_on = doc.get("target") or (TARGET_VIRTUAL if fingerprint else TARGET_DEVICE)
    return Index(directory, doc["chip"], fingerprint, artifacts, target=str(runs_on))
