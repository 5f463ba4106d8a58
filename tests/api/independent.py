"""An independent client, written from CRYPTO.md and INTERFACES.md alone (shared by the tests that use one).

It uses only the standard library and PyNaCl, no import from this project: the
same bytes a third-party client would produce against the real `fristed serve`.
"""

import base64
import json
import secrets
import urllib.error
import urllib.request

import nacl.bindings as sodium
import nacl.hash
import nacl.pwhash
from nacl.encoding import RawEncoder

DAMM = ["0317598642", "7092154863", "4206871359", "1750983426", "6123045978",
        "3674209581", "5869720134", "8945362017", "9438617205", "2581436790"]


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def h(n: int, msg: bytes, key: bytes = b"") -> bytes:
    return nacl.hash.blake2b(msg, digest_size=n, key=key, encoder=RawEncoder)


def new_code() -> str:
    body = "".join(str(secrets.randbelow(10)) for _ in range(15))
    interim = 0
    for ch in body:
        interim = int(DAMM[interim][int(ch)])
    return body + str(interim)


def derive(code: str, salt: bytes, kdf: dict) -> tuple[bytes, bytes, bytes]:
    """(Z.sk, Z.pk, access_token) from a pickup code (CRYPTO.md "Pickup code")."""
    master = nacl.pwhash.argon2id.kdf(32, code.encode(), salt, opslimit=kdf["ops"], memlimit=kdf["mem"])
    z_sk = h(32, b"fristed citizen key v1", master)
    token = h(32, b"fristed access token v1", master)
    return z_sk, sodium.crypto_scalarmult_base(z_sk), token


def seal(text: str, pks: list[bytes]) -> dict:
    """An envelope version 1 (CRYPTO.md "Envelope")."""
    k, nonce = secrets.token_bytes(32), secrets.token_bytes(24)
    padded = sodium.sodium_pad(json.dumps({"text": text}).encode(), 1024)
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, b"fristed/v1", nonce, k)
    return {"v": 1, "keys": [{"kid": b64e(h(16, pk)), "box": b64e(sodium.crypto_box_seal(k, pk))} for pk in pks],
            "nonce": b64e(nonce), "ct": b64e(ct)}


def unseal(envelope: dict, sk: bytes) -> str:
    pk = sodium.crypto_scalarmult_base(sk)
    box = next(e["box"] for e in envelope["keys"] if e["kid"] == b64e(h(16, pk)))
    k = sodium.crypto_box_seal_open(b64d(box), pk, sk)
    padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(b64d(envelope["ct"]), b"fristed/v1", b64d(envelope["nonce"]), k)
    return json.loads(sodium.sodium_unpad(padded, 1024))["text"]


def call(base: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
