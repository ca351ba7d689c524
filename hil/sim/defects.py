"""The virtual board's catalogue of named defects (``hil sim --defect NAME``).

A defect is a deliberate, documented deviation from correct behaviour that a virtual board can be
started with. Every security scenario is shown to fail against the defect that breaks the property
it checks (``@pytest.mark.fails_with`` and the defect meta-tests in ``selftest/``). Adding a defect
is adding a row here and honouring it at the one place it changes behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable

from hil.defects import ActiveDefects, Catalogue, Defect, UnknownDefectError

__all__ = ["BY_NAME", "CATALOGUE", "Defect", "DefectSet", "UnknownDefectError", "format_catalogue"]

_DEFECTS: tuple[Defect, ...] = (
    Defect(
        "rom-boots-without-bootloader",
        "rom",
        "with the bootloader region erased the ROM jumps straight to the primary slot's app",
    ),
    Defect(
        "loader-stale-md5",
        "loader",
        "SPI_FLASH_MD5 answers from a stale flash cache until the loader's first write: digests "
        "taken before writing are wrong (skip-if-identical rewrites), verification after is right",
    ),
    Defect(
        "mcuboot-accept-unsigned",
        "mcuboot",
        "MCUboot boots an image that has no signature TLV or a signature that does not verify",
    ),
    Defect(
        "mcuboot-skip-hash",
        "mcuboot",
        "MCUboot neither checks the SHA-256 TLV nor the signature: any payload change boots",
    ),
    Defect(
        "mcuboot-trust-embedded-key",
        "mcuboot",
        "MCUboot skips the key-hash check and verifies with the public key the image carries",
    ),
    Defect(
        "mcuboot-ignore-magic",
        "mcuboot",
        "MCUboot does not check the image header magic and boots what follows the header",
    ),
    Defect(
        "mcuboot-ignore-size",
        "mcuboot",
        "MCUboot hashes only the bytes present in the slot, so a truncated image boots",
    ),
    Defect(
        "mcuboot-never-revert",
        "mcuboot",
        "a test image that never confirmed itself is kept instead of reverted on the next boot",
    ),
    Defect(
        "mcuboot-boot-in-place",
        "mcuboot",
        "a requested swap is logged and its trailers written as if done, but the secondary slot is run where it "
        "lies, never copied: the new image runs and confirms while the primary slot still holds the old one, "
        "which the next reset boots again (the plain update scenario passes; ota.slots-hold-their-images sees it)",
    ),
    Defect("app-version-hardcoded", "app", "the app prints 'Firmware Version: 1.0.0' whatever its esp_app_desc_t says"),
    Defect(
        "nonce-not-persisted",
        "upload",
        "the upload nonce is incremented in RAM only, never committed to NVS: after a reset it is reused",
    ),
    Defect(
        "mac-over-payload-only",
        "upload",
        "the upload HMAC covers the payload string only, not the nonce (server answers INVALID_HMAC)",
    ),
    Defect(
        "nonce-reused-on-retry",
        "upload",
        "a retried upload re-sends the nonce of the failed attempt instead of a new one",
    ),
    Defect(
        "upload-retry-storm",
        "upload",
        "a failed upload (a 5xx, no connection) is retried at once, 12 attempts in all, each a new nonce",
    ),
    Defect(
        "nonce-wraps-at-max",
        "upload",
        "after the last u32 nonce the counter wraps to 0 instead of the device refusing to send",
    ),
    Defect(
        "encrypt-flag-ignored",
        "upload",
        "the provisioned encrypt setting is ignored: payloads go out compressed but in the clear",
    ),
    Defect(
        "tls-no-verify",
        "upload",
        "the HTTPS client does not verify the server certificate: a MITM certificate is accepted",
    ),
    Defect(
        "hmac-key-in-url",
        "upload",
        "a leftover debug query parameter carries the device's HMAC key in hex on every upload URL: the "
        "server ignores it and the upload is accepted, but anyone on the path reads the key (caught by the "
        "invariant secrets.not-in-artifacts in the capture, not by the upload scenario)",
    ),
    Defect(
        "tls-hostname-not-checked",
        "upload",
        "the HTTPS client verifies the server's chain but never its name (skip_cert_common_name_check: "
        "mbedtls_ssl_set_hostname is not called): a certificate the trusted CA issued for another host is accepted",
    ),
    Defect(
        "https-downgrade-to-http",
        "upload",
        "when the TLS handshake fails the upload is re-sent over plain HTTP to the same host and port "
        "(a 'compatibility' fallback): an attacker who breaks the handshake reads the packet",
    ),
    Defect(
        "ota-no-size-check",
        "ota",
        "the manifest's image size is not checked against the secondary slot: the slot is erased and the "
        "download starts for an image that cannot fit",
    ),
    Defect(
        "ota-skip-hash",
        "ota",
        "the OTA client never compares the image's SHA-256 with the manifest (bad_hash is installed)",
    ),
    Defect(
        "ota-skip-signature",
        "ota",
        "the OTA client never verifies the manifest's RSA-PSS signature (bad_signature, wrong_signing_key "
        "are installed)",
    ),
    Defect(
        "ota-accept-downgrade",
        "ota",
        "the OTA client installs an offered version older than or equal to the running one",
    ),
    Defect(
        "ota-version-compared-as-text",
        "ota",
        "the OTA client takes any version label the server sends and compares it with the running one as "
        "text (strcmp): 1.9.0 counts as newer than 1.10.0, and 2.0, v2.0.0 or 1.0.0-rc.1 as newer than 1.0.0",
    ),
    Defect(
        "ota-trusts-offered-version",
        "ota",
        "the OTA client compares only the version the server offers, never the one the signed image carries "
        "(esp_app_desc_t): an older signed image relabelled as newer is installed",
    ),
    Defect(
        "ota-confirm-before-selftest",
        "ota",
        "a freshly swapped-in test image confirms itself at boot before its self-test: a failing image stays",
    ),
    Defect(
        "ota-keep-partial-on-failure",
        "ota",
        "a failed update leaves the downloaded bytes in the secondary slot instead of erasing it",
    ),
    Defect(
        "nonce-reset-on-update",
        "ota",
        "a freshly updated image that confirms itself resets the NVS upload nonce to 0 (a settings migration "
        "for the new version that does not carry the counter over): its next nonces are ones the server has "
        "seen (caught by the invariant device.nonce-never-decreases, not by the update scenario)",
    ),
    Defect(
        "ota-no-resume",
        "ota",
        "a dropped connection or short chunk aborts the whole download instead of retrying that chunk",
    ),
    Defect(
        "coap-psk-any-identity",
        "coap",
        "the DTLS PSK callback returns the device key whatever identity the client offers: a wrong or "
        "empty identity with the right key completes the handshake",
    ),
    Defect(
        "dtls-cookie-unbound",
        "coap",
        "the DTLS cookie is not bound to the client's address and port: one cookie obtained from any "
        "address passes the HelloVerifyRequest check from every (spoofed) source, so a ClientHello "
        "flood allocates handshake state",
    ),
    Defect(
        "dtls-replay-window-off",
        "coap",
        "the DTLS anti-replay window is off: a replayed application record is processed (and answered) again",
    ),
    Defect(
        "dtls-session-before-cookie",
        "coap",
        "a DTLS session slot is allocated for every ClientHello before its cookie is verified: a ClientHello "
        "flood fills the session table (coap sessions) and locks legitimate clients out",
    ),
    Defect(
        "coap-ota-over-plain",
        "coap",
        "in coap_mode secure-only, POST /ota and PUT /light are served over plain CoAP (udp/5683) too",
    ),
    Defect("coap-psk-logged", "coap", "the CoAP task logs the DTLS PSK (identity and key) at start-up"),
)

CATALOGUE = Catalogue("defect", "hil sim --list-defects", _DEFECTS)
BY_NAME: dict[str, Defect] = CATALOGUE.by_name


class DefectSet(ActiveDefects):
    """The defects a virtual board was started with."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__(CATALOGUE, names)


def format_catalogue() -> str:
    """The catalogue as a table, for ``hil sim --list-defects``."""
    return CATALOGUE.format()
