"""Before any write: is the chip esptool detected the one the images and the inventory expect?

Writing an ESP32 image onto an ESP32-C6 (or onto the board next to the one the boards file means)
bricks nothing but proves nothing either: every verdict after it is about the wrong thing. So the
detected chip is compared with the firmware index's chip and the inventory's ``chip``, the detected
base MAC with the inventory's ``mac``, and a mismatch stops the flash before the first byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from hil.flashing.esptool_host import FlashError


class IdentityMismatch(FlashError):
    """The detected chip or MAC is not what the images or the inventory expect; nothing was written."""


@dataclass(frozen=True)
class ExpectedIdentity:
    """What the caller expects on the port: ``images_chip`` (the firmware index's chip, and where the
    index is), and the inventory's ``chip`` ("auto" or None: any) and ``mac`` (None: any)."""

    images_chip: str | None = None
    images_source: str = "the firmware index"
    chip: str | None = None
    mac: str | None = None


def normalise_mac(mac: str) -> str:
    """``AA-BB-CC-DD-EE-FF`` / ``aa:bb:...`` as lower-case, colon-separated."""
    return mac.strip().lower().replace("-", ":")


def check_identity(board: str, port: str, chip: str, mac: str, expected: ExpectedIdentity) -> None:
    """Raise :class:`IdentityMismatch` naming board, port, what was detected, what was expected and
    what to do, if ``chip``/``mac`` (as esptool detected them) differ from ``expected``."""
    problems = []
    if expected.images_chip and expected.images_chip != chip:
        problems.append(
            f"the images of {expected.images_source} are built for {expected.images_chip}: give an index "
            f"built for {chip} (pytest --hil-firmware-dir=DIR, hil flash --dir DIR), or plug in the "
            f"{expected.images_chip} board"
        )
    if expected.chip and expected.chip != "auto" and expected.chip != chip:
        problems.append(
            f"the boards file says chip = {expected.chip!r}: fix the board's entry (chip = {chip!r}), or check "
            "that its port leads to the board you mean"
        )
    if expected.mac and normalise_mac(expected.mac) != normalise_mac(mac):
        problems.append(
            f"the boards file says mac = {expected.mac!r}: another board answers on this port (USB ports "
            "renumbered?); fix the port (a /dev/serial/by-id path stays with the board) or the mac"
        )
    if problems:
        raise IdentityMismatch(
            f"{board}: refusing to flash on {port}: esptool detected {chip} with MAC {mac}, but "
            + "; and ".join(problems)
            + ". Nothing was written"
        )
