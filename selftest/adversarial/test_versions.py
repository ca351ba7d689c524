"""The version cases say true things: checked against the semver spec's grammar and ``packaging``'s
ordering (PyPA's, a peer nobody here wrote), against the images the lab builds, and against the
parser of the virtual board's firmware."""

from __future__ import annotations

import re

import pytest
from packaging.version import InvalidVersion, Version

from hil.adversarial.versions import CASES, NOT_NEWER_LABELS, RELABELLED, TEXT_ORDER, Verdict, format_cases, main
from hil.images.variants import RELEASES, VARIANTS
from hil.sim.firmware.ota_fields import parse_version

# The regular expression semver.org gives for SemVer 2.0.0 (named groups): "v1.2.3" is no semantic version.
SEMVER = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<buildmetadata>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
VERSION_OF = {r.name: r.version for r in RELEASES} | {v.name: v.version for v in VARIANTS}


def test_every_case_names_images_the_lab_builds() -> None:
    assert {c.running for c in CASES} | {c.package for c in CASES} <= set(VERSION_OF)
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", TEXT_ORDER, ids=lambda c: c.name)
def test_text_and_numeric_order_disagree(case) -> None:
    running, offered = VERSION_OF[case.running], VERSION_OF[case.package]
    newer_as_text, newer_as_number = offered > running, Version(offered) > Version(running)
    assert newer_as_text != newer_as_number
    assert (case.verdict is Verdict.INSTALL) == newer_as_number


@pytest.mark.parametrize("case", NOT_NEWER_LABELS, ids=lambda c: c.name)
def test_each_label_is_not_a_newer_version_an_image_can_carry(case) -> None:
    """By the semver spec's own grammar a label is no version at all, or (ordered as PEP 440 does) not
    newer than the running one, or beyond what MCUboot's header holds (major and minor one byte each);
    the firmware's parser takes none of them but the running version itself."""
    running = VERSION_OF[case.running]
    semver = SEMVER.fullmatch(case.label)
    assert semver is None or Version(case.label) <= Version(running) or int(semver["major"]) > 255
    assert (parse_version(case.label) is not None) == (case.label == running)
    assert case.verdict is Verdict.REFUSE_OFFER


@pytest.mark.parametrize("case", RELABELLED, ids=lambda c: c.name)
def test_each_relabelled_image_is_not_newer_than_the_running_one(case) -> None:
    running, signed = Version(VERSION_OF[case.running]), Version(VERSION_OF[case.package])
    assert signed <= running < Version(case.label)
    assert case.verdict is Verdict.REFUSE_IMAGE


def test_the_cases_print_themselves(capsys) -> None:
    assert main([]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == format_cases() and len(printed.splitlines()) == len(CASES)
    assert "relabelled '3.0.0'" in printed
