"""The FOTA public key an app image carries, as the real firmware does with a PEM string in its
``keys.h``: the builder places it in the app's read-only data right after ``esp_app_desc_t``;
the device model finds it in the running image. Pure codec, no I/O.
"""

from __future__ import annotations

PEM_BEGIN = b"-----BEGIN PUBLIC KEY-----"
PEM_END = b"-----END PUBLIC KEY-----"


def embeddable_pem(public_key_pem: bytes) -> bytes:
    """The NUL-terminated C string the app's rodata holds for ``public_key_pem``."""
    if not public_key_pem.startswith(PEM_BEGIN) or PEM_END not in public_key_pem:
        raise ValueError("expected a SubjectPublicKeyInfo PEM ('-----BEGIN PUBLIC KEY-----')")
    return public_key_pem.rstrip(b"\0") + b"\0"


def find_fota_public_key(app_image: bytes) -> bytes | None:
    """The first public-key PEM in an ESP32 app image (without its NUL), or ``None``."""
    start = app_image.find(PEM_BEGIN)
    end = app_image.find(PEM_END, start) if start >= 0 else -1
    if end < 0:
        return None
    return app_image[start : end + len(PEM_END)] + b"\n"
