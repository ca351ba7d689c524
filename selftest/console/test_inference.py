"""Inferred events in profiles: the [inferred] table is checked when loaded, inherited and
overridable, and its matcher follows boots (a refusal counts only within its own boot)."""

from __future__ import annotations

import pytest

from hil.console import ProfileError, UnknownEventError, load_profile

RESET = "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
BANNER = "[esp32] [INF] *** Booting MCUboot build v2.1.0 ***"
LOADING = "[esp32] [INF] Loading image 0 - slot 0 from flash, area id: 1"
REFUSED = "[esp32] [ERR] Image in the {} slot is not valid!"


def verified_at(lines: list[str], profile=None) -> list[int]:
    return [at for at, _, _ in (profile or load_profile()).scan(lines, ["boot.verified"])]


def test_verified_is_the_load_with_no_refusal_of_the_primary_in_this_boot():
    assert verified_at([RESET, BANNER, LOADING]) == [2]
    assert verified_at([RESET, BANNER, REFUSED.format("secondary"), LOADING]) == [3]
    assert verified_at([RESET, BANNER, REFUSED.format("primary"), LOADING]) == []  # loaded regardless
    assert verified_at([BANNER, REFUSED.format("primary"), RESET, BANNER, LOADING]) == [4]
    assert verified_at([REFUSED.format("primary"), BANNER, LOADING]) == [2]  # the banner opens a boot too


def test_history_before_the_wait_counts():
    profile = load_profile()
    matcher = profile.matcher("boot.verified", {"slot": "0"}, history=[RESET, BANNER, REFUSED.format("primary")])
    assert matcher(LOADING) is None
    fresh = profile.matcher("boot.verified", {"slot": "0"}, history=[RESET, BANNER, REFUSED.format("primary"), RESET])
    assert fresh(LOADING)["index"] == "0"


def test_inferred_event_has_the_fields_of_what_it_is_seen_in_and_no_regex():
    profile = load_profile()
    assert profile.fields("boot.verified") == ["index", "slot"]
    assert "boot.validated" in profile.describe("boot.verified")
    with pytest.raises(UnknownEventError, match="never printed"):
        profile.event("boot.verified")
    with pytest.raises(ValueError, match="keyhash"):
        profile.matcher("boot.verified", {"keyhash": "01"})
    assert "boot.verified" in load_profile("ecowatt-arduino").inferred  # inherited through extends


def write(tmp_path, body: str):
    path = tmp_path / "p.toml"
    path.write_text('[meta]\nname = "p"\nextends = "ecowatt-idf"\n' + body)
    return path


def test_a_firmware_that_prints_it_overrides_the_inference(tmp_path):
    profile = load_profile(write(tmp_path, '[events]\n"boot.verified" = "verified (?P<index>\\\\d+)"\n'))
    assert "boot.verified" not in profile.inferred and profile.event("boot.verified").search("verified 0")


@pytest.mark.parametrize(
    "body, message",
    [
        ('[events]\nx = "x"\n[inferred."a.b"]\nseen = "no.such"\n', "refers to 'no.such'"),
        (
            '[events]\nx = "x"\n[inferred."a.b"]\nseen = "x"\nnone_of = [{ event = "boot.refused", colour = "red" }]\n',
            "no field",
        ),
        ('[events]\nx = "x"\n[inferred."a.b"]\nsince = "x"\n', "needs seen"),
        ('[events]\nx = "x"\n[inferred."a.b"]\nseen = "x"\nnone_of = [3]\n', "neither an event name"),
        ('[events]\n"x" = "x"\n[inferred.x]\nseen = "rom.reset"\n', "both in \\[events\\] and \\[inferred\\]"),
    ],
)
def test_bad_inferred_entries_are_precise_errors(tmp_path, body, message):
    with pytest.raises(ProfileError, match=message):
        load_profile(write(tmp_path, body))
