"""`b64` (URL-safe base64 without padding) and key ids, CRYPTO.md "Notation"."""

import binascii
import hashlib

from crypto.errors import CryptoError

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
# The low bits the last character of a 2- or 3-character tail carries beyond the data: they
# must be zero, so that one byte string has exactly one spelling.
_STRAY_BITS = {2: 0x0F, 3: 0x03}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64(data: bytes) -> str:
    """URL-safe base64 without padding."""
    # binascii and translate directly: `base64.urlsafe_b64encode` is the same in more calls,
    # and an envelope's fields are encoded and checked on every write (issue 9).
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def unb64(text: object, *, length: int | None = None, field: str = "value") -> bytes:
    """Decode strict `b64`; padded, standard-alphabet or non-canonical input is rejected.

    `length`, when given, is the exact decoded length required.
    """
    # '+', '/' and '=' are what the standard decoder takes and we refuse; every other stray
    # character is refused by the decoder's strict mode.
    if not isinstance(text, str) or len(text) % 4 == 1 or "+" in text or "/" in text or "=" in text:
        raise CryptoError(CryptoError.PARSE, f"{field} is not URL-safe base64 without padding")
    tail = len(text) % 4
    try:
        raw = binascii.a2b_base64(text.encode("ascii").translate(_TO_STANDARD) + b"=" * (-tail % 4), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise CryptoError(CryptoError.PARSE, f"{field} is not URL-safe base64 without padding") from None
    # Reject non-canonical encodings (stray low bits in the last character):
    # one byte string must have exactly one spelling.
    if tail and _VALUE[text[-1]] & _STRAY_BITS[tail]:
        raise CryptoError(CryptoError.PARSE, f"{field} is not canonical base64")
    if length is not None and len(raw) != length:
        raise CryptoError(CryptoError.PARSE, f"{field} must be {length} bytes")
    return raw


def blake2b(n: int, message: bytes, key: bytes = b"") -> bytes:
    """`crypto_generichash` with an n-byte output. The same BLAKE2b as libsodium's (the vectors
    pin it), computed by `hashlib`, which costs a fraction of PyNaCl's wrapper on hot paths."""
    return hashlib.blake2b(message, digest_size=n, key=key).digest()


def kid(pk: bytes) -> str:
    """Key id: `b64(BLAKE2b(16, pk))`."""
    return b64(blake2b(16, pk))
