"""Derivations from the pickup code and the passphrase (CRYPTO.md)."""

import nacl.utils
import pytest
from nacl.public import PrivateKey

from crypto import CryptoError, derive_citizen, derive_staff, generate_code, lookup_for, open_key_blob, seal_key_blob
from crypto.encoding import blake2b

SALT = bytes(range(16))


def test_the_same_code_always_derives_the_same_keys_and_a_different_code_does_not():
    code = generate_code()
    first, again = derive_citizen(code, SALT, 1, 8192), derive_citizen(code, SALT, 1, 8192)
    assert (first.sk, first.pk, first.access_token, first.lookup) == (again.sk, again.pk, again.access_token, again.lookup)
    other = derive_citizen(generate_code(), SALT, 1, 8192)
    assert other.pk != first.pk and other.access_token != first.access_token


def test_the_server_stores_a_hash_of_the_token_not_the_token():
    keys = derive_citizen(generate_code(), SALT, 1, 8192)
    assert keys.lookup == lookup_for(keys.access_token) == blake2b(32, keys.access_token)
    assert keys.lookup != keys.access_token


def test_z_is_a_working_x25519_keypair():
    keys = derive_citizen(generate_code(), SALT, 1, 8192)
    assert bytes(PrivateKey(keys.sk).public_key) == keys.pk


def test_the_deployment_salt_changes_every_derivation():
    code = generate_code()
    assert derive_citizen(code, SALT, 1, 8192).pk != derive_citizen(code, bytes(16), 1, 8192).pk


def test_a_salt_must_be_16_bytes():
    with pytest.raises(CryptoError):
        derive_citizen(generate_code(), b"short", 1, 8192)


def test_auth_key_and_kek_are_independent_and_nfc_normalised():
    composed = derive_staff("Ångström", SALT, 1, 8192)
    decomposed = derive_staff("A\u030angstro\u0308m", SALT, 1, 8192)
    assert composed.auth_key == decomposed.auth_key and composed.kek == decomposed.kek
    assert composed.auth_key != composed.kek


def test_a_key_blob_opens_only_with_its_kek():
    staff = derive_staff("a long passphrase", SALT, 1, 8192)
    c_sk = nacl.utils.random(32)
    blob = seal_key_blob(staff.kek, c_sk)
    assert len(blob) == 72 and open_key_blob(staff.kek, blob) == c_sk
    wrong = derive_staff("another passphrase", SALT, 1, 8192)
    with pytest.raises(CryptoError) as caught:
        open_key_blob(wrong.kek, blob)
    assert caught.value.code == CryptoError.AUTHENTICATION
    with pytest.raises(CryptoError):
        open_key_blob(staff.kek, blob[:-1])
