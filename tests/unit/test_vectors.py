"""crypto/vectors.json: the Python implementation against the shared file.

The JavaScript side reads the same file in Node (tests/js) and in Chromium
(tests/browser). An unknown kind or outcome fails the run.
"""

import json
from pathlib import Path

import pytest

from crypto import (
    CryptoError,
    derive_citizen,
    derive_staff,
    kid,
    normalise_code,
    open_envelope,
    open_key_blob,
    seal_key_blob,
    unb64,
)
from crypto import pow as work
from crypto.code import damm_digit
from crypto.derive import public_key
from crypto.envelope import seal_envelope
from crypto.envelope2 import Binding, open_v2, read_as_citizen, read_as_team, seal_v2_bytes
from crypto.gen_vectors import render

PATH = Path(__file__).resolve().parents[2] / "crypto" / "vectors.json"
DATA = json.loads(PATH.read_text(encoding="utf-8"))
KNOWN_OUTCOMES = {"ok", CryptoError.PARSE, CryptoError.AUTHENTICATION, CryptoError.WRONG_KEY,
                  CryptoError.BAD_CHECK_DIGIT, CryptoError.BAD_LENGTH, CryptoError.BINDING}


def binding(given: dict) -> Binding:
    return Binding(given["role"], given["seq"], unb64(given["citizen_pk"]), unb64(given["team_pk"]))


def rows(given: dict) -> list[tuple[int, str, object]]:
    return [(m["seq"], m["from"], m["envelope"]) for m in given["messages"]]


def shown(reads: list) -> list[dict]:
    return [{"seq": r.seq, "from": r.sender, "verified": r.verified, "text": r.text} for r in reads]


def run(kind: str, given: dict) -> dict:
    """What the Python implementation computes for one vector's input."""
    if kind == "code_normalise":
        return {"digits": normalise_code(given["text"])}
    if kind == "check_digit":
        return {"digit": damm_digit(given["digits"])}
    if kind == "citizen_keys":
        keys = derive_citizen(given["digits"], unb64(given["code_salt"]), given["ops"], given["mem"])
        return {"master": keys.master, "z_sk": keys.sk, "z_pk": keys.pk, "z_kid": kid(keys.pk),
                "access_token": keys.access_token, "lookup": keys.lookup}
    if kind == "staff_keys":
        staff = derive_staff(given["passphrase"], unb64(given["salt"]), given["ops"], given["mem"])
        return {"master": staff.master, "auth_key": staff.auth_key, "auth_hash": staff.auth_hash, "kek": staff.kek}
    if kind == "key_blob_seal":
        c_sk = unb64(given["c_sk"])
        return {"key_blob": seal_key_blob(unb64(given["kek"]), c_sk, unb64(given["nonce"])),
                "c_pk": public_key(c_sk), "c_kid": kid(public_key(c_sk))}
    if kind == "key_blob_open":
        return {"c_sk": open_key_blob(unb64(given["kek"]), unb64(given["key_blob"]))}
    if kind == "envelope_seal":
        recipients = given["recipients"]
        envelope = seal_envelope(
            json.loads(given["plaintext"]),
            [unb64(r["pk"]) for r in recipients],
            content_key=unb64(given["content_key"]),
            nonce=unb64(given["nonce"]),
            ephemeral_sks=[unb64(r["ephemeral_sk"]) for r in recipients],
        )
        return {"envelope": envelope}
    if kind == "envelope_open":
        return {"plaintext": open_envelope(given["envelope"], unb64(given["sk"]))}
    if kind == "v2_binding":
        b = binding(given)
        return {"aad": b.aad().decode("ascii"), "box_nonce": b.box_nonce(unb64(given["nonce"]), unb64(given["recipient_pk"]))}
    if kind == "envelope2_seal":
        return {"envelope": seal_v2_bytes(given["plaintext"].encode("utf-8"), binding(given), unb64(given["sender_sk"]),
                                          content_key=unb64(given["content_key"]), nonce=unb64(given["nonce"]))}
    if kind == "envelope2_open":
        return {"plaintext": open_v2(given["envelope"], unb64(given["reader_sk"]), binding(given))}
    if kind == "conversation_citizen":
        return {"shown": shown(read_as_citizen(rows(given), unb64(given["z_sk"])))}
    if kind == "conversation_team":
        read = read_as_team(rows(given), [n["envelope"] for n in given["notes"]], unb64(given["citizen_pk"]),
                            {k: unb64(v) for k, v in given["team_sks"].items()})
        return {"pin": read.pin, "messages": shown(read.messages), "notes": shown(read.notes)}
    if kind == "pow":
        nonce, challenge = unb64(given["nonce"]), unb64(given["challenge"])
        out: dict = {"meets": work.meets(nonce, challenge, given["bits"], given["ops"], given["mem"])}
        if work.MIN_NONCE <= len(nonce) <= work.MAX_NONCE:
            digest = work.digest(nonce, challenge, given["ops"], given["mem"])
            out |= {"digest": digest, "zero_bits": work.zero_bits(digest)}
        return out
    if kind == "kid":
        return {"kid": kid(unb64(given["pk"]))}
    if kind == "public_key":
        return {"pk": public_key(unb64(given["sk"]))}
    raise AssertionError(f"unknown vector kind {kind!r}")


def as_json(value: object) -> object:
    from crypto import b64

    if isinstance(value, bytes):
        return b64(value)
    return value


def test_the_file_is_exactly_what_the_committed_generator_writes():
    assert PATH.read_text(encoding="utf-8") == render()


def test_the_file_declares_only_kinds_and_outcomes_both_sides_know():
    kinds = {v["kind"] for v in DATA["vectors"]}
    assert kinds == set(DATA["kinds"])
    assert set(DATA["outcomes"]) == KNOWN_OUTCOMES
    assert len({v["id"] for v in DATA["vectors"]}) == len(DATA["vectors"])


@pytest.mark.parametrize("vector", DATA["vectors"], ids=lambda v: v["id"])
def test_python_agrees_with_the_vector(vector):
    expected = vector["expected"]
    assert expected["outcome"] in KNOWN_OUTCOMES
    if expected["outcome"] == "ok":
        got = run(vector["kind"], vector["input"])
        for name, value in got.items():
            if name in expected:
                assert as_json(value) == expected[name], name
        assert set(expected) - {"outcome"} <= set(got)
    else:
        with pytest.raises(CryptoError) as caught:
            run(vector["kind"], vector["input"])
        assert caught.value.code == expected["outcome"]
