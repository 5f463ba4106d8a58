"""Envelopes: seal and open, tamper tests, and the server's shape and recipient rules."""

import copy

import pytest
from nacl.public import PrivateKey

from crypto import CryptoError, b64, check_recipients, kid, open_envelope, parse_envelope, seal_envelope, unb64

MAX = 131_072


@pytest.fixture
def keys():
    return [PrivateKey.generate() for _ in range(3)]


def sealed(keys, text="hello"):
    return seal_envelope({"text": text}, [bytes(keys[0].public_key), bytes(keys[1].public_key)])


def flip(text: str, index: int) -> str:
    raw = bytearray(unb64(text))
    raw[index] ^= 1
    return b64(bytes(raw))


def test_every_recipient_can_open_and_nobody_else(keys):
    envelope = sealed(keys, "Jeg har brug for hjælp ✓")
    for key in keys[:2]:
        assert open_envelope(envelope, bytes(key))["text"] == "Jeg har brug for hjælp ✓"
    with pytest.raises(CryptoError) as caught:
        open_envelope(envelope, bytes(keys[2]))
    assert caught.value.code == CryptoError.WRONG_KEY


def test_readers_ignore_fields_they_do_not_know(keys):
    envelope = seal_envelope({"text": "hi", "future": [1, 2]}, [bytes(keys[0].public_key)])
    assert open_envelope(envelope, bytes(keys[0]))["text"] == "hi"


def test_padding_hides_length_in_1024_byte_blocks(keys):
    short, longer = sealed(keys, "a"), sealed(keys, "a" * 900)
    assert len(unb64(short["ct"])) == len(unb64(longer["ct"])) == 1024 + 16
    assert len(unb64(sealed(keys, "a" * 1100)["ct"])) == 2048 + 16


@pytest.mark.parametrize("index", [0, 500, 1039])
def test_a_flipped_ciphertext_byte_fails_authentication(keys, index):
    envelope = sealed(keys)
    envelope["ct"] = flip(envelope["ct"], index)
    with pytest.raises(CryptoError) as caught:
        open_envelope(envelope, bytes(keys[0]))
    assert caught.value.code == CryptoError.AUTHENTICATION


def test_a_flipped_nonce_fails_authentication(keys):
    envelope = sealed(keys)
    envelope["nonce"] = flip(envelope["nonce"], 3)
    with pytest.raises(CryptoError) as caught:
        open_envelope(envelope, bytes(keys[0]))
    assert caught.value.code == CryptoError.AUTHENTICATION


def test_a_flipped_box_byte_is_a_wrong_key(keys):
    envelope = sealed(keys)
    envelope["keys"][0]["box"] = flip(envelope["keys"][0]["box"], 50)
    with pytest.raises(CryptoError) as caught:
        open_envelope(envelope, bytes(keys[0]))
    assert caught.value.code == CryptoError.WRONG_KEY


def test_a_plaintext_needs_text():
    with pytest.raises(CryptoError):
        seal_envelope({"body": "x"}, [bytes(PrivateKey.generate().public_key)])


def bad_shapes(envelope):
    def variant(mutate):
        changed = copy.deepcopy(envelope)
        mutate(changed)
        return changed

    yield "not an object", ["v"]
    yield "missing ct", {k: v for k, v in envelope.items() if k != "ct"}
    yield "unknown field", {**envelope, "extra": 1}
    yield "version 2", {**envelope, "v": 2}
    yield "version true", {**envelope, "v": True}
    yield "version as string", {**envelope, "v": "1"}
    yield "no recipients", {**envelope, "keys": []}
    yield "nine recipients", {**envelope, "keys": envelope["keys"] * 4 + envelope["keys"][:1]}
    yield "duplicate recipient", {**envelope, "keys": [envelope["keys"][0], envelope["keys"][0]]}
    yield "recipient with extra field", variant(lambda e: e["keys"][0].update(x=1))
    yield "short kid", variant(lambda e: e["keys"][0].update(kid=b64(b"k" * 15)))
    yield "short box", variant(lambda e: e["keys"][0].update(box=b64(b"b" * 79)))
    yield "padded nonce", {**envelope, "nonce": envelope["nonce"] + "="}
    yield "standard base64 ct", {**envelope, "ct": envelope["ct"].replace("-", "+").replace("_", "/") + "+/"}
    yield "short nonce", {**envelope, "nonce": b64(b"n" * 23)}
    yield "unpadded ct", {**envelope, "ct": b64(b"c" * 1000)}
    yield "ct not a block multiple", {**envelope, "ct": b64(b"c" * (1024 + 16 + 1))}


def test_the_server_rejects_every_bad_shape(keys):
    envelope = sealed(keys)
    assert parse_envelope(envelope, max_bytes=MAX).kids == (envelope["keys"][0]["kid"], envelope["keys"][1]["kid"])
    for name, bad in bad_shapes(envelope):
        with pytest.raises(CryptoError) as caught:
            parse_envelope(bad, max_bytes=MAX)
        assert caught.value.code == CryptoError.BAD_ENVELOPE, name


def test_the_server_rejects_an_envelope_over_the_size_limit(keys):
    envelope = sealed(keys, "x" * 5000)
    with pytest.raises(CryptoError) as caught:
        parse_envelope(envelope, max_bytes=4096)
    assert caught.value.code == CryptoError.BAD_ENVELOPE


def test_recipients_must_be_exactly_the_required_kids(keys):
    team, citizen, other = (kid(bytes(k.public_key)) for k in keys)
    both = parse_envelope(sealed(keys), max_bytes=MAX)
    check_recipients(both, {team, citizen}, set())
    with pytest.raises(CryptoError) as caught:
        check_recipients(both, {team}, set())
    assert caught.value.code == CryptoError.BAD_ENVELOPE
    with pytest.raises(CryptoError):
        check_recipients(both, {team, citizen, other}, set())


def test_a_retired_team_key_in_place_of_the_current_one_is_stale(keys):
    retired, citizen, current = (kid(bytes(k.public_key)) for k in keys)
    envelope = parse_envelope(sealed(keys), max_bytes=MAX)  # sealed to retired + citizen
    with pytest.raises(CryptoError) as caught:
        check_recipients(envelope, {current, citizen}, {retired})
    assert caught.value.code == CryptoError.STALE_TEAM_KEY
    # …but not when the citizen key is missing too: that is simply a bad envelope.
    with pytest.raises(CryptoError) as caught:
        check_recipients(envelope, {current, kid(b"z" * 32)}, {retired})
    assert caught.value.code == CryptoError.BAD_ENVELOPE
