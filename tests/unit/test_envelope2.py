"""Envelope v2: randomised round trips, tampering, and the server's shape rules (crypto/README.md)."""

import copy

import pytest
from nacl.public import PrivateKey

from crypto import CryptoError, b64, kid, parse_envelope, unb64
from crypto.envelope2 import Binding, header_of, open_v2, parse_v2, seal_v2

MAX = 131_072


@pytest.fixture
def world():
    z, t, other = (PrivateKey.generate() for _ in range(3))
    return {"z": bytes(z), "t": bytes(t), "other": bytes(other),
            "zpk": bytes(z.public_key), "tpk": bytes(t.public_key), "otherpk": bytes(other.public_key)}


def flip(text: str, index: int) -> str:
    raw = bytearray(unb64(text))
    raw[index] ^= 1
    return b64(bytes(raw))


def test_each_role_round_trips_for_each_recipient_and_is_randomised(world):
    reply = Binding("consultant", 2, world["zpk"], world["tpk"])
    env = seal_v2({"text": "Vi er her ✓"}, reply, world["t"])
    assert open_v2(env, world["z"], reply)["text"] == open_v2(env, world["t"], reply)["text"] == "Vi er her ✓"
    assert seal_v2({"text": "Vi er her ✓"}, reply, world["t"])["ct"] != env["ct"]
    note = Binding("note", 0, world["zpk"], world["tpk"])
    assert open_v2(seal_v2({"text": "n"}, note, world["t"]), world["t"], note)["text"] == "n"
    with pytest.raises(CryptoError) as caught:
        open_v2(seal_v2({"text": "n"}, note, world["t"]), world["z"], note)
    assert caught.value.code == CryptoError.WRONG_KEY


def test_only_the_roles_own_key_can_seal(world):
    with pytest.raises(CryptoError) as caught:
        seal_v2({"text": "x"}, Binding("consultant", 2, world["zpk"], world["tpk"]), world["z"])
    assert caught.value.code == CryptoError.BINDING


@pytest.mark.parametrize("field,index", [("ct", 0), ("ct", 1039), ("nonce", 5)])
def test_tampering_fails_authentication(world, field, index):
    b = Binding("citizen", 1, world["zpk"], world["tpk"])
    env = seal_v2({"text": "x"}, b, world["z"])
    env[field] = flip(env[field], index)
    with pytest.raises(CryptoError) as caught:
        open_v2(env, world["t"], b)
    assert caught.value.code == CryptoError.AUTHENTICATION


def test_a_box_made_with_public_keys_only_does_not_verify(world):
    b = Binding("consultant", 2, world["zpk"], world["tpk"])
    forged = seal_v2({"text": "mød mig"}, Binding("consultant", 2, world["zpk"], world["otherpk"]), world["other"])
    forged["team"] = b64(world["tpk"])
    forged["keys"][0]["kid"] = kid(world["tpk"])
    assert header_of(forged).team_pk == world["tpk"]
    for reader in (world["z"], world["t"]):
        with pytest.raises(CryptoError) as caught:
            open_v2(forged, reader, b)
        assert caught.value.code == CryptoError.AUTHENTICATION


def bad_shapes(env):
    def variant(mutate):
        changed = copy.deepcopy(env)
        mutate(changed)
        return changed

    yield "extra field", {**env, "x": 1}
    yield "no seq", {k: v for k, v in env.items() if k != "seq"}
    yield "v true", {**env, "v": True}
    yield "unknown role", {**env, "from": "server"}
    yield "seq as string", {**env, "seq": "2"}
    yield "seq bool", {**env, "seq": True}
    yield "seq 0 for a message", {**env, "seq": 0}
    yield "seq too large", {**env, "seq": 2**31}
    yield "note with seq", {**env, "from": "note"}
    yield "team a kid", {**env, "team": env["thread"]}
    yield "thread padded", {**env, "thread": env["thread"] + "="}
    yield "boxes swapped", {**env, "keys": env["keys"][::-1]}
    yield "one box", {**env, "keys": env["keys"][:1]}
    yield "three boxes", {**env, "keys": [*env["keys"], env["keys"][0]]}
    yield "v1 box size", variant(lambda e: e["keys"][0].update(box=b64(b"b" * 80)))
    yield "box kid not the header's", variant(lambda e: e["keys"][1].update(kid=e["keys"][0]["kid"]))
    yield "ct unpadded", {**env, "ct": b64(b"c" * 1000)}


def test_the_server_rejects_every_bad_v2_shape(world):
    env = seal_v2({"text": "x"}, Binding("citizen", 2, world["zpk"], world["tpk"]), world["z"])
    parsed, header = parse_v2(env, max_bytes=MAX)
    assert parsed.kids == (kid(world["tpk"]), kid(world["zpk"])) == parse_envelope(env, max_bytes=MAX).kids
    assert (header.role, header.seq, header.thread_kid, header.team_kid) == ("citizen", 2, kid(world["zpk"]), kid(world["tpk"]))
    for name, bad in bad_shapes(env):
        with pytest.raises(CryptoError) as caught:
            parse_envelope(bad, max_bytes=MAX)
        assert caught.value.code == CryptoError.BAD_ENVELOPE, name
    with pytest.raises(CryptoError) as caught:
        parse_envelope(env, max_bytes=1500)
    assert caught.value.code == CryptoError.BAD_ENVELOPE


@pytest.mark.parametrize("text", ["", "hej", "Vi er her ✓ " * 300])
def test_the_stored_form_is_the_canonical_json_of_either_version(world, text):
    """What the server stores is `json.dumps(data, separators=(",", ":"), sort_keys=True)`, byte for
    byte (crypto/README.md), whichever encoder makes it."""
    import json

    from crypto import seal_envelope

    v1 = seal_envelope({"text": text}, [world["tpk"], world["zpk"]])
    v2s = [seal_v2({"text": text}, Binding(role, seq, world["zpk"], world["tpk"]), world["z" if role == "citizen" else "t"])
           for role, seq in (("citizen", 1), ("consultant", 2), ("note", 0))]
    for env in [v1, *v2s]:
        assert parse_envelope(env, max_bytes=MAX).to_json() == json.dumps(env, separators=(",", ":"), sort_keys=True)
