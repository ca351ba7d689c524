"""NVS partitions built once per session, by device identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hil.images.nvs_gen import DeviceIdentity, build_nvs


@dataclass
class NvsCache:
    """NVS images built this session, by identity (the generator takes ~0.15 s a run)."""

    directory: Path
    _images: dict[DeviceIdentity, bytes] = field(default_factory=dict)

    def image(self, identity: DeviceIdentity) -> bytes:
        """The NVS partition of *identity*, built once."""
        if identity not in self._images:
            out = self.directory / f"nvs-{len(self._images)}.bin"
            self._images[identity] = build_nvs(identity, out).read_bytes()
            out.unlink()  # holds keys: keep them in memory only
        return self._images[identity]
