"""An independent client, written from CRYPTO.md and INTERFACES.md alone.

It uses only HTTP and PyNaCl (no import from this project) against the real
`fristed serve`: the same bytes a third-party client would produce.
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
    master = nacl.pwhash.argon2id.kdf(32, code.encode(), salt, opslimit=kdf["ops"], memlimit=kdf["mem"])
    z_sk = h(32, b"fristed citizen key v1", master)
    token = h(32, b"fristed access token v1", master)
    return z_sk, sodium.crypto_scalarmult_base(z_sk), token


def seal(text: str, pks: list[bytes]) -> dict:
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


def test_an_independent_client_creates_opens_replies_and_deletes(live_server):
    base = live_server.url
    status, config = call(base, "GET", "/api/v1/config")
    assert status == 200
    [team] = [t for t in config["teams"] if t["id"] == "demo"]
    assert team["kid"] == b64e(h(16, b64d(team["pk"])))

    code = new_code()
    z_sk, z_pk, token = derive(code, b64d(config["code_salt"]), config["kdf"])
    team_pk = b64d(team["pk"])
    status, created = call(base, "POST", "/api/v1/threads", {
        "team": "demo", "citizen_pk": b64e(z_pk), "access_token": b64e(token),
        "envelope": seal("Første besked", [team_pk, z_pk])})
    assert status == 201, created
    assert len(created["expires"]) == 10

    # Coming back later: only the code is remembered; everything is derived again.
    z_sk2, _, token2 = derive(code, b64d(config["code_salt"]), config["kdf"])
    status, thread = call(base, "POST", "/api/v1/threads/open", {"access_token": b64e(token2)})
    assert status == 200
    assert thread["citizen_pk"] == b64e(z_pk)
    assert [unseal(m["envelope"], z_sk2) for m in thread["messages"]] == ["Første besked"]

    status, _ = call(base, "POST", "/api/v1/threads/reply", {"access_token": b64e(token), "envelope": seal("Mere", [team_pk, z_pk])})
    assert status == 201
    status, thread = call(base, "POST", "/api/v1/threads/open", {"access_token": b64e(token)})
    assert [(m["seq"], m["from"], unseal(m["envelope"], z_sk)) for m in thread["messages"]] == [
        (1, "citizen", "Første besked"), (2, "citizen", "Mere")]

    status, _ = call(base, "POST", "/api/v1/threads/delete", {"access_token": b64e(token)})
    assert status == 204
    status, error = call(base, "POST", "/api/v1/threads/open", {"access_token": b64e(token)})
    assert status == 404 and error["error"]["code"]
