"""Server-held secrets at rest (TOTP seeds): sealed under a key derived from `DIR/secret_key`.

A stolen database without the secret file does not yield any TOTP seed.
"""

import nacl.exceptions
import nacl.secret
import nacl.utils

from crypto.encoding import blake2b


def _box(server_secret: bytes, purpose: str) -> nacl.secret.SecretBox:
    return nacl.secret.SecretBox(blake2b(32, f"fristed server {purpose} v1".encode(), key=server_secret))


def seal(server_secret: bytes, purpose: str, data: bytes) -> bytes:
    return bytes(_box(server_secret, purpose).encrypt(data))


def unseal(server_secret: bytes, purpose: str, sealed: bytes) -> bytes:
    try:
        return _box(server_secret, purpose).decrypt(sealed)
    except nacl.exceptions.CryptoError:
        raise ValueError(f"a sealed {purpose} does not open with this server's secret_key") from None


def keyed_hash(server_secret: bytes, purpose: str, data: bytes) -> bytes:
    """A keyed hash for values stored only to be compared (tokens, fake salts)."""
    return blake2b(32, data, key=blake2b(32, f"fristed server {purpose} v1".encode(), key=server_secret))
