"""The proof-of-work part of `crypto/vectors.json` (written by `python -m crypto.gen_vectors`).

Kind `pow` (INTERFACES.md "Version 1.1 additions", crypto/pow.py,
crypto/js/pow.mjs): input `{challenge, nonce, bits, ops, mem}` (b64 and
integers); expected `digest` = b64(Argon2id(nonce, challenge[0:16], ops, mem)),
`zero_bits` (leading zero bits of the digest from the most significant bit of
byte 0) and `meets` (whether the nonce solves the challenge at `bits`; a nonce
outside 8..32 bytes never does, and then `digest` and `zero_bits` are left
out). The solving nonce is found by trying labelled nonces in order, so the
file stays deterministic.
"""

from collections.abc import Callable

from crypto import pow as work
from crypto.encoding import b64

KINDS = ["pow"]
OUTCOMES: list[str] = []
# The deployment's default cost for proof of work is small (1 pass, 1 MiB).
OPS, MEM = 1, 1024 * 1024
BITS = 8


def build(fixed: Callable[..., bytes]) -> list[dict]:
    challenge = fixed("pow challenge")
    solving = next(n for n in (fixed(f"pow nonce {i}", 8) for i in range(100_000))
                   if work.meets(n, challenge, BITS, OPS, MEM))
    failing = next(n for n in (fixed(f"pow other nonce {i}", 8) for i in range(1000))
                   if work.zero_bits(work.digest(n, challenge, OPS, MEM)) < BITS)
    long_nonce = fixed("pow long nonce", 32)
    out = []
    for name, comment, nonce, bits in (
        ("pow-solves", f"a nonce with at least {BITS} leading zero bits", solving, BITS),
        ("pow-short-of-bits", f"a nonce with fewer than {BITS} leading zero bits", failing, BITS),
        ("pow-zero-bits", "with bits = 0 any nonce of 8..32 bytes meets", failing, 0),
        ("pow-long-nonce", "a 32-byte nonce is allowed (digest of all 32 bytes)", long_nonce, 1),
    ):
        digest = work.digest(nonce, challenge, OPS, MEM)
        out.append({"id": name, "kind": "pow", "comment": comment,
                    "input": {"challenge": b64(challenge), "nonce": b64(nonce), "bits": bits, "ops": OPS, "mem": MEM},
                    "expected": {"outcome": "ok", "digest": b64(digest), "zero_bits": work.zero_bits(digest),
                                 "meets": work.meets(nonce, challenge, bits, OPS, MEM)}})
    for name, nonce in (("pow-nonce-too-short", solving[:7]), ("pow-nonce-too-long", fixed("pow 33", 33))):
        out.append({"id": name, "kind": "pow", "comment": "a nonce outside 8..32 bytes never meets",
                    "input": {"challenge": b64(challenge), "nonce": b64(nonce), "bits": 0, "ops": OPS, "mem": MEM},
                    "expected": {"outcome": "ok", "meets": False}})
    return out
