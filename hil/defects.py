"""Named defect catalogues: the mechanism shared by the virtual board (``hil.sim.defects``) and
the reference server (``hil.server.defects``).

A defect is a deliberate, documented deviation from correct behaviour that a virtual board or a
server can be started with; every security scenario is shown to fail against the defect that breaks
the property it checks. A catalogue is data; a defect is honoured at the one place it changes
behaviour, which asks ``"name" in active_defects``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Defect:
    """One named defect: where it lives and what it breaks."""

    name: str
    area: str
    summary: str


class UnknownDefectError(ValueError):
    """A defect name that is not in the catalogue."""


class Catalogue:
    """An ordered collection of defects of one kind (``what``: "defect", "server defect")."""

    def __init__(self, what: str, list_command: str, defects: Iterable[Defect]) -> None:
        self.what = what
        self.list_command = list_command
        self.defects = tuple(defects)
        self.by_name = {d.name: d for d in self.defects}

    def __iter__(self) -> Iterator[Defect]:
        return iter(self.defects)

    def check(self, names: Iterable[str]) -> frozenset[str]:
        """``names`` as a set; raises ``UnknownDefectError`` naming the unknown ones."""
        names = frozenset(names)
        unknown = sorted(names - self.by_name.keys())
        if unknown:
            raise UnknownDefectError(
                f"unknown {self.what}(s) {', '.join(unknown)}; `{self.list_command}` lists the catalogue"
            )
        return names

    def format(self) -> str:
        """One line per defect, for ``--list-defects``."""
        width = max(len(d.name) for d in self.defects)
        return "\n".join(f"{d.name:<{width}}  [{d.area}] {d.summary}" for d in self.defects)


class ActiveDefects:
    """An immutable set of active defects, validated against a catalogue."""

    def __init__(self, catalogue: Catalogue, names: Iterable[str] = ()) -> None:
        self._catalogue = catalogue
        self._names = catalogue.check(names)

    def __contains__(self, name: str) -> bool:
        if name not in self._catalogue.by_name:  # a typo at a check site must not read as "off"
            raise UnknownDefectError(f"{self._catalogue.what} {name!r} checked but not in the catalogue")
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __bool__(self) -> bool:
        return bool(self._names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self._names)!r})"
