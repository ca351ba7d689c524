"""Firmware versions that a careless comparison gets wrong, each case saying what a correct device does.

An OTA check is the device comparing the version the server offers with the one it runs, and then
(after the download) the version the signed image itself carries. Each case is one way that goes
wrong when the comparison is not the numeric ``major.minor.patch`` one over the signed version:

* **text order**: ``"1.9.0" > "1.10.0"`` as strings, ``<`` as numbers. A device comparing strings
  installs an older image, or refuses a real update; a server choosing "the newest" by text offers
  nothing or the wrong package.
* **labels that are not versions**: a pre-release of the running version, two or four components,
  a ``v`` prefix, a component too large for the image header's field. The device cannot order them
  against what it runs, so it must refuse them, not guess.
* **relabelled packages**: a server (or whoever controls it) offers a validly signed *older* image
  under a newer label. Hash and signature verify, since they cover the image, not the label: only
  comparing the image's own signed version (its ``esp_app_desc_t``) catches it.

A case is data that prints itself (:func:`format_cases`, ``python -m hil.adversarial.versions``).
``running`` and ``package`` name images the image builder makes (``hil.images.variants``), so a
scenario can flash the one and offer the other, relabelled with the ``relabel_version`` server fault.
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class Verdict(enum.Enum):
    """What a correct device does with the offer (the value says it in words)."""

    INSTALL = "installs it"
    REFUSE_OFFER = "refuses the offer before downloading anything (DOWNGRADE_REFUSED, or a reply it cannot use)"
    REFUSE_IMAGE = "downloads, then refuses the image its signed version betrays (DOWNGRADE_REFUSED)"


@dataclass(frozen=True)
class VersionCase:
    """The device runs the image ``running``; the server offers the package of the image ``package``,
    under its own version or, when ``label`` is set, relabelled as ``label`` (image names of the lab's
    firmware index, e.g. ``app-v1.10``)."""

    name: str
    running: str
    package: str
    label: str | None
    verdict: Verdict
    why: str

    def describe(self) -> str:
        """One line: the case, what is offered, what a correct device does."""
        relabel = f" relabelled {self.label!r}" if self.label is not None else ""
        offer = f"running {self.running}, offered {self.package}{relabel}"
        return f"{self.name}: {offer} → {self.verdict.value}; {self.why}"


TEXT_ORDER: tuple[VersionCase, ...] = (
    VersionCase(
        "newer-as-text-older-as-number",
        "app-v1.10",
        "app-v1.9",
        None,
        Verdict.REFUSE_OFFER,
        '"1.9.0" sorts after "1.10.0" as text: a device comparing strings installs the older image',
    ),
    VersionCase(
        "older-as-text-newer-as-number",
        "app-v1.9",
        "app-v1.10",
        None,
        Verdict.INSTALL,
        '"1.10.0" sorts before "1.9.0" as text: a device or server comparing strings never updates',
    ),
)

# Labels offered to a board running app-v1 (1.0.0), app-v2's package inside: the device must refuse
# each label at the check, never reaching the package.
NOT_NEWER_LABELS: tuple[VersionCase, ...] = (
    VersionCase("same-version", "app-v1", "app-v2", "1.0.0", Verdict.REFUSE_OFFER, "the running version is not newer"),
    VersionCase(
        "pre-release-of-running",
        "app-v1",
        "app-v2",
        "1.0.0-rc.1",
        Verdict.REFUSE_OFFER,
        "semver orders a pre-release before its release; a parser that drops the suffix sees 1.0.0",
    ),
    VersionCase(
        "two-components",
        "app-v1",
        "app-v2",
        "2.0",
        Verdict.REFUSE_OFFER,
        "not major.minor.patch: a lenient parser pads it to 2.0.0 and installs whatever the package holds",
    ),
    VersionCase(
        "v-prefix",
        "app-v1",
        "app-v2",
        "v2.0.0",
        Verdict.REFUSE_OFFER,
        "a git-describe tag, not a version the device can order",
    ),
    VersionCase(
        "four-components",
        "app-v1",
        "app-v2",
        "2.0.0.1",
        Verdict.REFUSE_OFFER,
        "one component too many: a parser that reads the first three sees 2.0.0",
    ),
    VersionCase(
        "major-past-the-header-field",
        "app-v1",
        "app-v2",
        "257.0.0",
        Verdict.REFUSE_OFFER,
        "MCUboot's header holds the major in one byte: 257 wraps to 1, and no signed image can carry it",
    ),
)

RELABELLED: tuple[VersionCase, ...] = (
    VersionCase(
        "older-image-under-newer-label",
        "app-v1",
        "downgrade",
        "3.0.0",
        Verdict.REFUSE_IMAGE,
        "the signed 0.9.0 image relabelled 3.0.0: hash and signature verify, its own version does not",
    ),
    VersionCase(
        "running-image-under-newer-label",
        "app-v1",
        "app-v1",
        "3.0.0",
        Verdict.REFUSE_IMAGE,
        "the running 1.0.0 image relabelled: the fleet's records would say 3.0.0 (a fix installed) where 1.0.0 runs",
    ),
)

CASES: tuple[VersionCase, ...] = (*TEXT_ORDER, *NOT_NEWER_LABELS, *RELABELLED)


def format_cases(cases: Iterable[VersionCase] = CASES) -> str:
    """The cases, one per line."""
    return "\n".join(case.describe() for case in cases)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hil.adversarial.versions``: print the cases."""
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    print(format_cases())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
