"""The reference server's catalogue of named defects (``hil server --defect NAME``).

Same mechanism as the virtual board's (:mod:`hil.defects`): each row is a deliberate, documented
deviation that a security scenario must be shown to fail against, honoured at the one place it
changes behaviour (grep for its name in ``hil/server``).
"""

from __future__ import annotations

from collections.abc import Iterable

from hil.defects import ActiveDefects, Catalogue, Defect, UnknownDefectError

UnknownServerDefectError = UnknownDefectError

_DEFECTS: tuple[Defect, ...] = (
    Defect(
        "nonce-advanced-before-mac",
        "upload",
        "the nonce is checked and advanced before the MAC (the seed's order): a forged packet burns nonces",
    ),
    Defect(
        "missing-fields-skip-checks",
        "upload",
        "a missing or null mac skips the MAC check and a missing or null nonce skips the replay check",
    ),
    Defect(
        "replay-allowed-equal-nonce",
        "upload",
        "the replay check is nonce >= last instead of nonce > last, so the last packet replays once more",
    ),
    Defect(
        "unknown-device-accepted",
        "upload",
        "a device id missing from the registry is auto-registered on first contact: its packet is "
        "stored without a MAC check",
    ),
    Defect(
        "rate-limit-per-device",
        "upload",
        "the rate limit counts every request naming a device, from any peer: replays of one captured "
        "packet exhaust the device's quota and block its genuine uploads (429)",
    ),
    Defect("no-rate-limit", "upload", "uploads are never rate limited (no 429)"),
    Defect(
        "rate-limit-refusals-unlogged",
        "upload",
        "the rate limit answers 429 in front of the security log (as a proxy or middleware would): a "
        "flood leaves no security event (caught by the invariant server.refusal-recorded, not by the 429)",
    ),
    Defect(
        "malformed-json-500",
        "upload",
        "a body that is not JSON crashes the handler into HTTP 500 (the public EcoWatt server's bug)",
    ),
    Defect(
        "field-type-errors-500",
        "upload",
        "a JSON object whose fields have the wrong type or range (nonce as a string, float, negative or "
        "huge; mac not hex) crashes the handler into HTTP 500 instead of 400",
    ),
    Defect("no-body-limit", "upload", "bodies over 16 KiB are read and processed instead of refused with 413"),
    Defect(
        "body-limit-off-by-one",
        "upload",
        "the body limit is checked with >= instead of >: a valid upload of exactly the declared size is "
        "refused as too large (found by mutation testing: bench/mutation.py)",
    ),
    Defect(
        "nonces-in-memory",
        "upload",
        "the last accepted nonce of each device is kept in process memory only (like the seed's dict): "
        "after a server restart every device is on first contact again and old packets replay",
    ),
    Defect(
        "nonce-check-not-atomic",
        "upload",
        "the replay check reads the last nonce, the packet is processed and stored, and only then is the "
        "nonce recorded (check-then-act): copies of one packet sent at once are all accepted",
    ),
    Defect(
        "device-id-copy-unchecked",
        "upload",
        "the device id the packet is filed under (the ecowatt-fw134 URL path) is not compared with the copy "
        "inside the MAC'd plaintext (the public EcoWatt server): a captured packet re-posted under another "
        "device's id is stored as that device's readings",
    ),
    Defect(
        "rate-limit-counts-refusals",
        "upload",
        "refused attempts count against the rate-limit window too: a device that retries inside the window "
        "extends its own lock-out, and the retry_after it was told is a lie",
    ),
    Defect(
        "admin-token-prefix-accepted",
        "admin",
        "the admin bearer token is compared as a prefix of the real one (a length bug in a hand-written "
        "compare): an empty or truncated token opens the admin API",
    ),
    Defect(
        "ota-newest-by-text",
        "ota",
        "the update check picks the packages newer than the device's version, and the newest of them, by "
        "comparing version strings: 1.10.0 sorts before 1.9.0, so a device on 1.9.0 is never offered 1.10.0",
    ),
    Defect(
        "plaintext-device-id-trusted",
        "upload",
        "readings are stored under the device id inside the decrypted plaintext instead of refusing a "
        "plaintext that names another device: device A (or its stolen key) writes readings for device B",
    ),
)

CATALOGUE = Catalogue("server defect", "hil server --list-defects", _DEFECTS)
BY_NAME: dict[str, Defect] = CATALOGUE.by_name


class ServerDefects(ActiveDefects):
    """The defects a reference server was started with."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__(CATALOGUE, names)


def describe_catalogue() -> str:
    """One line per server defect, for ``hil server --list-defects``."""
    return CATALOGUE.format()
