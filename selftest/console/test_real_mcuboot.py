"""A console fed what a real Espressif-port MCUboot prints yields the boot events the scenarios wait
on: ``boot.verified`` inferred from the load (MCUboot announces no verification), ``boot.refused``
for a bad image, none of it fooled by a refusal of the other slot or of an earlier boot.

The transcripts are written from MCUboot's sources; ``real_mcuboot_output.toml`` names the source
of every line. The device is pyserial's ``loop://`` port, written with the bootloader's own
``"\\n\\r"`` line endings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import serial

from hil.console import Console, ExpectTimeout, UnexpectedOutput, load_profile

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

TRANSCRIPTS = tomllib.loads(Path(__file__).with_name("real_mcuboot_output.toml").read_text())["transcript"]
WAIT = 5.0  # the lines are already in the loop buffer: a pass never waits this long
# The boot.verified line only the old virtual board printed, as the profile defined it before
PRINTED_VERIFICATION = r"Image (?P<index>\d+): SHA-256 OK, RSA-2048 PSS signature OK, key hash (?P<keyhash>[0-9a-f]+)"


def lines(name: str) -> list[str]:
    return [text for text, _source in TRANSCRIPTS[name]["lines"]]


@pytest.fixture
def port():
    p = serial.serial_for_url("loop://", timeout=0.1)
    yield p
    p.close()


def console_for(port, profile=None) -> Console:
    console = Console(port, "esp32-bench", profile)
    console.start()
    console.expect_reset()  # the harness announces the resets it causes
    return console


def feed(port, *names: str) -> None:
    for name in names:
        port.write(
            b"".join(text.encode() + (b"\n\r" if text.startswith("[esp32]") else b"\r\n") for text in lines(name))
        )


def test_every_transcript_line_names_its_source():
    for name, transcript in TRANSCRIPTS.items():
        assert transcript["lines"], name
        assert all(len(entry) == 2 and entry[1].strip() for entry in transcript["lines"]), name


def test_good_boot_is_verified_by_inference(port):
    console = console_for(port)
    feed(port, "good-boot")
    try:
        console.expect_event("boot.mcuboot", WAIT, build="v2.1.0")
        verified = console.expect_event("boot.verified", WAIT, index="0", slot="0", unless=["boot.no_image"])
        assert "Loading image 0 - slot 0 from flash" in verified.string
        console.expect_event("app.started", WAIT)
    finally:
        console.close()


def test_bad_primary_is_refused_and_never_verified(port):
    console = console_for(port)
    feed(port, "bad-primary")
    try:
        console.expect_event("boot.refused", WAIT, slot="primary", unless=["boot.validated"])
        console.expect_event("boot.no_image", WAIT)
        with pytest.raises(UnexpectedOutput, match=r"boot\.no_image"):
            console.expect_event("boot.verified", WAIT, since=0, unless=["boot.no_image"])
    finally:
        console.close()


def test_refused_secondary_does_not_taint_the_primary(port):
    console = console_for(port)
    feed(port, "refused-secondary")
    try:
        console.expect_event("boot.swap", WAIT, swap_type="test", unless=["boot.validated"])
        console.expect_event("boot.refused", WAIT, slot="secondary", unless=["boot.validated"])
        console.expect_event("boot.verified", WAIT, slot="0", unless=["boot.no_image"])
    finally:
        console.close()


def test_test_swap_then_verified(port):
    console = console_for(port)
    feed(port, "test-swap")
    try:
        console.expect_event("boot.swap", WAIT, swap_type="test", unless=["boot.validated"])
        console.expect_event("boot.swapping", WAIT, algorithm="scratch")
        console.expect_event("boot.verified", WAIT, unless=["boot.no_image"])
    finally:
        console.close()


def test_the_profile_as_it_was_fails_on_real_output(port, tmp_path):
    """The wait every boot scenario made (verification line before the load) against the same
    transcript, with boot.verified a printed event as before: a correct board fails at once."""
    old = tmp_path / "printed-verification.toml"
    old.write_text(
        '[meta]\nname = "printed-verification"\nextends = "ecowatt-idf"\n[events]\n'
        f"\"boot.verified\" = '{PRINTED_VERIFICATION}'\n"
    )
    console = console_for(port, load_profile(old))
    feed(port, "good-boot")
    try:
        stopped = r"unexpected event boot\.validated .* while waiting for event boot\.verified"
        with pytest.raises(UnexpectedOutput, match=stopped):
            console.expect_event("boot.verified", WAIT, unless=["boot.validated", "boot.no_image"])
    finally:
        console.close()


def test_a_refusal_before_the_wait_still_counts(port):
    """A bootloader that says "not valid" and loads anyway is not verified, even when the test
    consumed the refusal line before it started waiting."""
    console = console_for(port)
    broken = [text for text in lines("bad-primary") if "Unable to find" not in text]
    broken += [text for text in lines("good-boot") if "Loading image" in text]
    port.write("".join(f"{text}\r\n" for text in broken).encode())
    try:
        console.expect_event("boot.refused", WAIT, slot="primary")
        console.expect_event("boot.validated", WAIT, since=0)  # it did load...
        with pytest.raises(ExpectTimeout):  # ...but that is no verification (0.3 s: all lines are in)
            console.expect_event("boot.verified", 0.3, since=0)
    finally:
        console.close()


def test_a_new_boot_forgets_the_previous_refusal(port):
    console = console_for(port)
    feed(port, "bad-primary")
    try:
        console.expect_event("boot.no_image", WAIT)
        console.expect_reset()
        feed(port, "good-boot")
        # from the very start: the first boot's refusal is behind the second boot's reset banner
        assert "Loading image" in console.expect_event("boot.verified", WAIT, since=0, slot="0").string
    finally:
        console.close()
