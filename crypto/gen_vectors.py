"""Write `crypto/vectors.json` deterministically: `python -m crypto.gen_vectors`.

Every fixed input is derived from a label with BLAKE2b, so the file is the
same on every run; `tests/unit/test_vectors.py` checks the committed file is
exactly what this script writes. The schema is documented in crypto/README.md.
"""

import json
import sys
from pathlib import Path

from crypto.code import damm_digit
from crypto.derive import derive_citizen, derive_staff, public_key, seal_key_blob
from crypto.encoding import b64, blake2b, kid
from crypto.envelope import seal_envelope
from crypto.errors import CryptoError
from crypto.gen_vectors_pow import KINDS as POW_KINDS
from crypto.gen_vectors_pow import build as pow_vectors
from crypto.gen_vectors_v2 import KINDS as V2_KINDS
from crypto.gen_vectors_v2 import OUTCOMES as V2_OUTCOMES
from crypto.gen_vectors_v2 import build as v2_vectors

PATH = Path(__file__).with_name("vectors.json")
# Real deployment cost for the code derivation; cheaper for the rest so the
# suite stays fast in every runtime (the parameters are part of each vector).
DEFAULT_KDF = {"ops": 3, "mem": 64 * 1024 * 1024}
CHEAP_KDF = {"ops": 2, "mem": 8 * 1024 * 1024}


def fixed(label: str, n: int = 32) -> bytes:
    return blake2b(n, label.encode(), key=b"fristed test vectors v1")


def code_vectors() -> list[dict]:
    good = "482109375562118"
    good += damm_digit(good)
    cases = [
        ("code-ascii-groups", "code typed in four groups", " ".join(good[i : i + 4] for i in range(0, 16, 4)), good),
        ("code-dashes", "dashes and stray spaces are dropped", f"{good[:4]}-{good[4:8]}- {good[8:12]} -{good[12:]}", good),
        ("code-arabic-indic", "Arabic-Indic digits U+0660..U+0669", good.translate({48 + i: 0x0660 + i for i in range(10)}), good),
        ("code-persian", "Extended Arabic-Indic (Persian) digits U+06F0..U+06F9", good.translate({48 + i: 0x06F0 + i for i in range(10)}), good),
    ]
    out = [
        {"id": i, "kind": "code_normalise", "comment": c, "input": {"text": t}, "expected": {"outcome": "ok", "digits": d}}
        for i, c, t, d in cases
    ]
    typo = good[:5] + str((int(good[5]) + 1) % 10) + good[6:]
    swap = good[:2] + good[3] + good[2] + good[4:]
    if swap == good:
        raise SystemExit("pick a code whose digits 3 and 4 differ")
    out += [
        {"id": "code-typo", "kind": "code_normalise", "comment": "one digit mistyped: the check digit catches it",
         "input": {"text": typo}, "expected": {"outcome": CryptoError.BAD_CHECK_DIGIT}},
        {"id": "code-transposed", "kind": "code_normalise", "comment": "two neighbours swapped: the check digit catches it",
         "input": {"text": swap}, "expected": {"outcome": CryptoError.BAD_CHECK_DIGIT}},
        {"id": "code-short", "kind": "code_normalise", "comment": "15 digits",
         "input": {"text": good[:15]}, "expected": {"outcome": CryptoError.BAD_LENGTH}},
    ]
    for body in ("000000000000000", "999999999999999", "123456789012345"):
        out.append({"id": f"damm-{body}", "kind": "check_digit", "comment": "Damm check digit of 15 digits",
                    "input": {"digits": body}, "expected": {"outcome": "ok", "digit": damm_digit(body)}})
    return out


def citizen_vectors() -> list[dict]:
    out = []
    for name, kdf in (("default", DEFAULT_KDF), ("cheap", CHEAP_KDF)):
        body = f"{int.from_bytes(fixed('code ' + name, 8), 'big') % 10**15:015d}"
        digits = body + damm_digit(body)
        salt = fixed("code_salt " + name, 16)
        keys = derive_citizen(digits, salt, kdf["ops"], kdf["mem"])
        out.append({
            "id": f"citizen-{name}", "kind": "citizen_keys",
            "comment": f"pickup code derivations with {name} Argon2id parameters",
            "input": {"digits": digits, "code_salt": b64(salt), **kdf},
            "expected": {"outcome": "ok", "master": b64(keys.master), "z_sk": b64(keys.sk), "z_pk": b64(keys.pk),
                         "z_kid": kid(keys.pk), "access_token": b64(keys.access_token), "lookup": b64(keys.lookup)},
        })
    return out


def staff_vectors() -> list[dict]:
    salt = fixed("staff salt", 16)
    # "Å" as A + combining ring (NFD) must derive like the precomposed "Å" (NFC).
    passphrase = "korrekt he\u0301st batteri A\u030angstrom"  # noqa: S105 (a test vector)
    keys = derive_staff(passphrase, salt, **CHEAP_KDF)
    c_sk = fixed("consultant sk")
    nonce = fixed("key_blob nonce", 24)
    blob = seal_key_blob(keys.kek, c_sk, nonce)
    tampered = bytearray(blob)
    tampered[30] ^= 1
    return [
        {"id": "staff-nfc", "kind": "staff_keys", "comment": "passphrase is NFC-normalised before Argon2id",
         "input": {"passphrase": passphrase, "salt": b64(salt), **CHEAP_KDF},
         "expected": {"outcome": "ok", "master": b64(keys.master), "auth_key": b64(keys.auth_key),
                      "auth_hash": b64(keys.auth_hash), "kek": b64(keys.kek)}},
        {"id": "key-blob-seal", "kind": "key_blob_seal", "comment": "sealing C.sk with a fixed nonce",
         "input": {"kek": b64(keys.kek), "nonce": b64(nonce), "c_sk": b64(c_sk)},
         "expected": {"outcome": "ok", "key_blob": b64(blob), "c_pk": b64(public_key(c_sk)), "c_kid": kid(public_key(c_sk))}},
        {"id": "key-blob-open", "kind": "key_blob_open", "comment": "opening the blob above",
         "input": {"kek": b64(keys.kek), "key_blob": b64(blob)}, "expected": {"outcome": "ok", "c_sk": b64(c_sk)}},
        {"id": "key-blob-tampered", "kind": "key_blob_open", "comment": "one ciphertext bit flipped",
         "input": {"kek": b64(keys.kek), "key_blob": b64(bytes(tampered))}, "expected": {"outcome": CryptoError.AUTHENTICATION}},
        {"id": "key-blob-wrong-kek", "kind": "key_blob_open", "comment": "a different passphrase",
         "input": {"kek": b64(fixed("other kek")), "key_blob": b64(blob)}, "expected": {"outcome": CryptoError.AUTHENTICATION}},
    ]


def envelope_vectors() -> list[dict]:
    team_sk, citizen_sk, stranger_sk = fixed("team sk"), fixed("citizen sk"), fixed("stranger sk")
    esks = [fixed("ephemeral 1"), fixed("ephemeral 2")]
    k, nonce = fixed("content key"), fixed("envelope nonce", 24)
    out: list[dict] = []
    first: dict = {}
    texts = {
        "short": {"text": "Hej, jeg har brug for hjælp."},
        "rtl": {"text": "مرحبا، أحتاج إلى مساعدة", "lang": "ar"},
        "block": {"text": "x" * 1013},  # {"text":"…"} is exactly 1024 bytes: padding adds a second block
    }
    for name, plaintext in texts.items():
        env = seal_envelope(plaintext, [public_key(team_sk), public_key(citizen_sk)], content_key=k, nonce=nonce, ephemeral_sks=esks)
        first = first or env
        body = json.dumps(plaintext, ensure_ascii=False, separators=(",", ":"))
        out.append({
            "id": f"envelope-seal-{name}", "kind": "envelope_seal",
            "comment": "fixed K, nonce and ephemeral keys: sealing is byte-exact",
            "input": {"plaintext": body, "content_key": b64(k), "nonce": b64(nonce),
                      "recipients": [{"pk": b64(public_key(team_sk)), "ephemeral_sk": b64(esks[0])},
                                     {"pk": b64(public_key(citizen_sk)), "ephemeral_sk": b64(esks[1])}]},
            "expected": {"outcome": "ok", "envelope": env},
        })
        for who, sk in (("team", team_sk), ("citizen", citizen_sk)):
            out.append({"id": f"envelope-open-{name}-{who}", "kind": "envelope_open", "comment": f"the {who} opens it",
                        "input": {"envelope": env, "sk": b64(sk)}, "expected": {"outcome": "ok", "plaintext": plaintext}})
    env = first
    flipped_ct = dict(env, ct=_flip(env["ct"], 100))
    flipped_box = dict(env, keys=[dict(env["keys"][0], box=_flip(env["keys"][0]["box"], 40)), env["keys"][1]])
    out += [
        {"id": "envelope-open-stranger", "kind": "envelope_open", "comment": "a key that is not a recipient",
         "input": {"envelope": env, "sk": b64(stranger_sk)}, "expected": {"outcome": CryptoError.WRONG_KEY}},
        {"id": "envelope-open-tampered-ct", "kind": "envelope_open", "comment": "one ciphertext byte flipped",
         "input": {"envelope": flipped_ct, "sk": b64(team_sk)}, "expected": {"outcome": CryptoError.AUTHENTICATION}},
        {"id": "envelope-open-tampered-box", "kind": "envelope_open", "comment": "one byte of the team's box flipped",
         "input": {"envelope": flipped_box, "sk": b64(team_sk)}, "expected": {"outcome": CryptoError.WRONG_KEY}},
        {"id": "envelope-open-bad-version", "kind": "envelope_open", "comment": "v is 2",
         "input": {"envelope": dict(env, v=2), "sk": b64(team_sk)}, "expected": {"outcome": CryptoError.PARSE}},
        {"id": "envelope-open-padded-b64", "kind": "envelope_open", "comment": "nonce in padded base64",
         "input": {"envelope": dict(env, nonce=env["nonce"] + "="), "sk": b64(team_sk)}, "expected": {"outcome": CryptoError.PARSE}},
        {"id": "kid-team", "kind": "kid", "comment": "kid = b64(BLAKE2b(16, pk))",
         "input": {"pk": b64(public_key(team_sk))}, "expected": {"outcome": "ok", "kid": kid(public_key(team_sk))}},
        {"id": "pk-from-sk", "kind": "public_key", "comment": "X25519 scalarmult_base of a raw secret",
         "input": {"sk": b64(citizen_sk)}, "expected": {"outcome": "ok", "pk": b64(public_key(citizen_sk))}},
    ]
    return out


def _flip(text: str, index: int) -> str:
    from crypto.encoding import unb64

    raw = bytearray(unb64(text))
    raw[index] ^= 0x01
    return b64(bytes(raw))


def build() -> dict:
    return {
        "version": 1,
        "comment": "Fristed crypto v1 test vectors; written by `python -m crypto.gen_vectors`; schema in crypto/README.md.",
        # Each section adds its kinds, outcomes and vectors here (envelope v2: crypto/gen_vectors_v2.py).
        "kinds": ["code_normalise", "check_digit", "citizen_keys", "staff_keys", "key_blob_seal",
                  "key_blob_open", "envelope_seal", "envelope_open", "kid", "public_key", *V2_KINDS, *POW_KINDS],
        "outcomes": ["ok", CryptoError.PARSE, CryptoError.AUTHENTICATION, CryptoError.WRONG_KEY,
                     CryptoError.BAD_CHECK_DIGIT, CryptoError.BAD_LENGTH, *V2_OUTCOMES],
        "vectors": code_vectors() + citizen_vectors() + staff_vectors() + envelope_vectors() + v2_vectors(fixed) + pow_vectors(fixed),
    }


def render() -> str:
    return json.dumps(build(), ensure_ascii=False, indent=1) + "\n"


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {PATH}\n")
