"""`b64` (URL-safe base64 without padding) and key ids, CRYPTO.md "Notation"."""

import base64
import binascii
import hashlib
import re

from crypto.errors import CryptoError

# Strict alphabet: URL-safe letters only, no '=' padding, no whitespace.
_B64_RE = re.compile(r"\A[A-Za-z0-9_-]*\Z")


def b64(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: object, *, length: int | None = None, field: str = "value") -> bytes:
    """Decode strict `b64`; padded, standard-alphabet or non-canonical input is rejected.

    `length`, when given, is the exact decoded length required.
    """
    if not isinstance(text, str) or not _B64_RE.match(text) or len(text) % 4 == 1:
        raise CryptoError(CryptoError.PARSE, f"{field} is not URL-safe base64 without padding")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise CryptoError(CryptoError.PARSE, f"{field} is not valid base64") from None
    # Reject non-canonical encodings (stray low bits in the last character):
    # one byte string must have exactly one spelling.
    if b64(raw) != text:
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
