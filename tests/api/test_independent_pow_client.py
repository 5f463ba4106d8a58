"""An independent client solves the proof of work (INTERFACES.md "Version 1.1 additions") alone.

Only HTTP and PyNaCl, no import of this project's `crypto` package: what a
third party writing from INTERFACES.md 1.1 and CRYPTO.md would do, against the
real `fristed serve` while it demands `bits` > 0 (`[pow] floor_bits = 8`).
"""

import base64
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator

import nacl.bindings as sodium
import nacl.hash
import nacl.pwhash
import pytest
from nacl.encoding import RawEncoder

from tests.support import LiveServer, set_option

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


def derive(code: str, salt: bytes, kdf: dict) -> tuple[bytes, bytes]:
    master = nacl.pwhash.argon2id.kdf(32, code.encode(), salt, opslimit=kdf["ops"], memlimit=kdf["mem"])
    z_sk = h(32, b"fristed citizen key v1", master)
    return sodium.crypto_scalarmult_base(z_sk), h(32, b"fristed access token v1", master)


def seal(text: str, pks: list[bytes]) -> dict:
    k, nonce = secrets.token_bytes(32), secrets.token_bytes(24)
    padded = sodium.sodium_pad(json.dumps({"text": text}).encode(), 1024)
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, b"fristed/v1", nonce, k)
    return {"v": 1, "keys": [{"kid": b64e(h(16, pk)), "box": b64e(sodium.crypto_box_seal(k, pk))} for pk in pks],
            "nonce": b64e(nonce), "ct": b64e(ct)}


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def pow_hash(nonce: bytes, challenge: bytes, ops: int, mem: int) -> bytes:
    """h = Argon2id(nonce, challenge[0:16], ops, mem), 32 bytes (CRYPTO.md's Argon2id)."""
    return nacl.pwhash.argon2id.kdf(32, nonce, challenge[:16], opslimit=ops, memlimit=mem)


def solve(issued: dict, *, miss: bool = False) -> dict:
    """A nonce whose hash has at least `bits` leading zero bits (or, with `miss`, fewer)."""
    challenge = b64d(issued["challenge"])
    while True:
        nonce = secrets.token_bytes(8)
        enough = leading_zero_bits(pow_hash(nonce, challenge, issued["ops"], issued["mem"])) >= issued["bits"]
        if enough != miss:
            return {"challenge": issued["challenge"], "nonce": b64e(nonce)}


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


@pytest.fixture
def demanding_server(demo) -> Iterator[LiveServer]:
    set_option(demo.data_dir, "pow", "floor_bits", "8")
    with LiveServer(demo.data_dir, demo.env) as server:
        yield server


def test_an_independent_client_solves_the_proof_of_work_and_writes_while_bits_are_up(demanding_server):
    base = demanding_server.url
    status, config = call(base, "GET", "/api/v1/config")
    assert status == 200 and config["pow"]["bits"] >= 8
    [team] = [t for t in config["teams"] if t["id"] == "demo"]
    team_pk = b64d(team["pk"])
    z_pk, token = derive(new_code(), b64d(config["code_salt"]), config["kdf"])
    thread = {"team": "demo", "citizen_pk": b64e(z_pk), "access_token": b64e(token), "envelope": seal("Hjælp", [team_pk, z_pk])}

    status, error = call(base, "POST", "/api/v1/threads", thread)
    assert (status, error["error"]["code"]) == (403, "pow_required")

    status, issued = call(base, "POST", "/api/v1/challenge", {})
    assert status == 200 and set(issued) >= {"challenge", "bits", "ops", "mem", "expires"}
    assert len(b64d(issued["challenge"])) == 32 and issued["bits"] >= 8 and issued["expires"].endswith("Z")
    short = solve(issued, miss=True)
    status, error = call(base, "POST", "/api/v1/threads", {**thread, "pow": short})
    assert (status, error["error"]["code"]) == (400, "bad_pow")
    forged = bytearray(b64d(issued["challenge"]))
    forged[20] ^= 1
    status, error = call(base, "POST", "/api/v1/threads", {**thread, "pow": {**short, "challenge": b64e(bytes(forged))}})
    assert (status, error["error"]["code"]) == (400, "bad_pow")

    paid = solve(issued)
    status, created = call(base, "POST", "/api/v1/threads", {**thread, "pow": paid})
    assert status == 201, created

    reply = {"access_token": b64e(token), "envelope": seal("Mere", [team_pk, z_pk])}
    status, error = call(base, "POST", "/api/v1/threads/reply", {**reply, "pow": paid})  # one challenge, one write
    assert (status, error["error"]["code"]) == (409, "stale_challenge")
    status, issued = call(base, "POST", "/api/v1/challenge", {})
    status, _ = call(base, "POST", "/api/v1/threads/reply", {**reply, "pow": solve(issued)})
    assert status == 201
    status, opened = call(base, "POST", "/api/v1/threads/open", {"access_token": b64e(token)})
    assert status == 200 and [m["seq"] for m in opened["messages"]] == [1, 2]
