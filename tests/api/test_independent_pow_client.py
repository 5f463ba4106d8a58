"""An independent client solves the proof of work (INTERFACES.md "Version 1.1 additions") alone.

Only HTTP and PyNaCl, no import of this project's `crypto` package: what a
third party writing from INTERFACES.md 1.1 and CRYPTO.md would do, against the
real `fristed serve` while it demands `bits` > 0 (`[pow] floor_bits = 8`).
"""

import secrets
from collections.abc import Iterator

import nacl.hash
import nacl.pwhash
import pytest

from tests.api.independent import b64d, b64e, call, derive, new_code, seal
from tests.support import LiveServer, set_option


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
    _z_sk, z_pk, token = derive(new_code(), b64d(config["code_salt"]), config["kdf"])
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
