"""Key derivations from the pickup code and the consultant passphrase (CRYPTO.md)."""

import unicodedata
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions
import nacl.pwhash
import nacl.utils

from crypto.encoding import blake2b
from crypto.errors import CryptoError

SALT_BYTES = 16
KEY_BLOB_AAD = b"fristed consultant key v1"
XNONCE_BYTES = 24


def argon2id(password: bytes, salt: bytes, ops: int, mem: int) -> bytes:
    """`crypto_pwhash` (ALG_ARGON2ID13) with a 32-byte output; `mem` in bytes."""
    if len(salt) != SALT_BYTES:
        raise CryptoError(CryptoError.PARSE, "an Argon2id salt is 16 bytes")
    return nacl.pwhash.argon2id.kdf(32, password, salt, opslimit=ops, memlimit=mem)


def public_key(sk: bytes) -> bytes:
    """X25519 public key of a raw 32-byte secret (`crypto_scalarmult_base`)."""
    return sodium.crypto_scalarmult_base(sk)


@dataclass(frozen=True, repr=False)
class CitizenKeys:
    master: bytes
    sk: bytes
    pk: bytes
    access_token: bytes
    lookup: bytes


def lookup_for(access_token: bytes) -> bytes:
    """What the server stores to find a thread: `BLAKE2b(32, access_token)`."""
    return blake2b(32, access_token)


def derive_citizen(digits: str, code_salt: bytes, ops: int, mem: int) -> CitizenKeys:
    """Everything the pickup code yields. `digits` is the normalised 16-digit string."""
    master = argon2id(digits.encode("ascii"), code_salt, ops, mem)
    # Z.sk is used directly as the X25519 scalar (not as a crypto_box seed).
    sk = blake2b(32, b"fristed citizen key v1", key=master)
    access_token = blake2b(32, b"fristed access token v1", key=master)
    return CitizenKeys(master, sk, public_key(sk), access_token, lookup_for(access_token))


@dataclass(frozen=True, repr=False)
class StaffKeys:
    master: bytes
    auth_key: bytes
    kek: bytes

    @property
    def auth_hash(self) -> bytes:
        """What the server stores: `BLAKE2b(32, auth_key)`."""
        return blake2b(32, self.auth_key)


def derive_staff(passphrase: str, salt: bytes, ops: int, mem: int) -> StaffKeys:
    """`auth_key` (sent at login) and `kek` (never leaves the browser) from the passphrase."""
    master = argon2id(unicodedata.normalize("NFC", passphrase).encode("utf-8"), salt, ops, mem)
    return StaffKeys(
        master,
        blake2b(32, b"fristed staff auth v1", key=master),
        blake2b(32, b"fristed staff kek v1", key=master),
    )


def seal_key_blob(kek: bytes, c_sk: bytes, nonce: bytes | None = None) -> bytes:
    """`nonce(24) || XChaCha20-Poly1305-IETF(kek, nonce, aad, C.sk)`."""
    nonce = nacl.utils.random(XNONCE_BYTES) if nonce is None else nonce
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(c_sk, KEY_BLOB_AAD, nonce, kek)
    return nonce + ct


def open_key_blob(kek: bytes, key_blob: bytes) -> bytes:
    """The consultant secret key `C.sk`, or `CryptoError` (wrong passphrase or tampering)."""
    if len(key_blob) != XNONCE_BYTES + 32 + 16:
        raise CryptoError(CryptoError.PARSE, "a key_blob is 72 bytes")
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            key_blob[XNONCE_BYTES:], KEY_BLOB_AAD, key_blob[:XNONCE_BYTES], kek
        )
    except nacl.exceptions.CryptoError:
        raise CryptoError(CryptoError.AUTHENTICATION, "the key could not be unlocked") from None
