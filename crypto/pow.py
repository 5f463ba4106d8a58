"""Proof of work for anonymous writes (INTERFACES.md "Version 1.1 additions").

A solution is a `nonce` of 8 to 32 bytes such that
`h = Argon2id(nonce, challenge[0:16], ops, mem)` (32 bytes, CRYPTO.md's
`Argon2id`) starts with at least `bits` zero bits, counted from the most
significant bit of `h[0]`. Argon2id makes each try cost memory as well as
time, so a flood cannot be bought cheaply with GPUs (GlobaLeaks' approach).
"""

import secrets

from crypto.derive import argon2id

CHALLENGE_BYTES = 32
MIN_NONCE = 8
MAX_NONCE = 32


def digest(nonce: bytes, challenge: bytes, ops: int, mem: int) -> bytes:
    """`Argon2id(nonce, challenge[0:16], ops, mem)`, 32 bytes."""
    return argon2id(nonce, challenge[:16], ops, mem)


def zero_bits(h: bytes) -> int:
    """Leading zero bits of `h`, from the most significant bit of `h[0]`."""
    count = 0
    for byte in h:
        if byte:
            return count + 8 - byte.bit_length()
        count += 8
    return count


def meets(nonce: bytes, challenge: bytes, bits: int, ops: int, mem: int) -> bool:
    """Whether `nonce` solves `challenge` at `bits` (a nonce of the wrong length never does)."""
    if not MIN_NONCE <= len(nonce) <= MAX_NONCE or len(challenge) != CHALLENGE_BYTES:
        return False
    return bits <= 0 or zero_bits(digest(nonce, challenge, ops, mem)) >= bits


def solve(challenge: bytes, bits: int, ops: int, mem: int) -> bytes:
    """Try random 8-byte nonces until one meets `bits` (about 2**bits tries)."""
    while True:
        nonce = secrets.token_bytes(MIN_NONCE)
        if meets(nonce, challenge, bits, ops, mem):
            return nonce
