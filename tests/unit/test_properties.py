"""Properties (hypothesis) of what an attacker controls: typed codes, envelopes, proof-of-work answers."""

import json
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from crypto import CryptoError, b64
from crypto import pow as work
from crypto.code import damm_digit, format_code, normalise_code
from crypto.envelope import parse_envelope, seal_envelope
from gateway import pow as gateway_pow
from gateway.errors import ApiError
from gateway.jsonio import parse_json
from gateway.settings import PowSettings

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRET = secrets.token_bytes(32)
bodies = st.text(alphabet="0123456789", min_size=15, max_size=15)
junk = st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=3)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def code_of(body: str) -> str:
    return body + damm_digit(body)


@SETTINGS
@given(bodies, st.lists(junk, min_size=17, max_size=17))
def test_a_code_survives_any_non_digit_noise_and_arabic_or_persian_digits(body, noise):
    code = code_of(body)
    typed = "".join(n + d for n, d in zip(noise, code + "", strict=False)) + noise[-1]
    assert normalise_code(typed) == code
    assert normalise_code(format_code(code)) == code
    for zero in (0x0660, 0x06F0):
        assert normalise_code(code.translate({48 + i: zero + i for i in range(10)})) == code


@SETTINGS
@given(bodies, st.integers(0, 15), st.integers(1, 9))
def test_every_single_digit_typo_is_caught_by_the_check_digit(body, place, shift):
    code = code_of(body)
    typo = code[:place] + str((int(code[place]) + shift) % 10) + code[place + 1:]
    with pytest.raises(CryptoError) as caught:
        normalise_code(typo)
    assert caught.value.code == CryptoError.BAD_CHECK_DIGIT


@SETTINGS
@given(bodies, st.integers(0, 14))
def test_every_swap_of_two_different_neighbours_is_caught(body, place):
    code = code_of(body)
    if code[place] == code[place + 1]:
        return
    swapped = code[:place] + code[place + 1] + code[place] + code[place + 2:]
    with pytest.raises(CryptoError) as caught:
        normalise_code(swapped)
    assert caught.value.code == CryptoError.BAD_CHECK_DIGIT


@SETTINGS
@given(st.text(max_size=64))
def test_any_typed_text_is_a_code_or_one_clear_error(text):
    try:
        digits = normalise_code(text)
    except CryptoError as exc:
        assert exc.code in (CryptoError.BAD_LENGTH, CryptoError.BAD_CHECK_DIGIT)
    else:
        assert len(digits) == 16 and digits.isascii() and damm_digit(digits) == "0"


@SETTINGS
@given(json_values)
def test_any_json_value_is_an_envelope_or_bad_envelope_never_a_crash(value):
    try:
        parse_envelope(value, max_bytes=131_072)
    except CryptoError as exc:
        assert exc.code == CryptoError.BAD_ENVELOPE
    else:
        raise AssertionError("arbitrary data passed as an envelope")


PKS = [bytes(PrivateKey.generate().public_key) for _ in range(9)]


@SETTINGS
@given(st.integers(1, 8), st.text(max_size=300), st.sampled_from(["v", "keys", "nonce", "ct", "extra", "kid", "box"]),
       st.one_of(st.none(), st.integers(), st.text(max_size=40), st.lists(st.integers(), max_size=2)))
def test_a_real_envelope_passes_and_any_one_field_changed_to_junk_is_bad_envelope(recipients, text, field, junk_value):
    envelope = seal_envelope({"text": text}, PKS[:recipients])
    assert parse_envelope(envelope, max_bytes=131_072).kids == tuple(k["kid"] for k in envelope["keys"])
    broken = json.loads(json.dumps(envelope))
    target = broken["keys"][0] if field in ("kid", "box") else broken
    if field in target and target[field] == junk_value:
        return  # not a change
    target[field] = junk_value
    with pytest.raises(CryptoError) as caught:
        parse_envelope(broken, max_bytes=131_072)
    assert caught.value.code == CryptoError.BAD_ENVELOPE


@SETTINGS
@given(st.binary(min_size=1, max_size=64))
def test_zero_bits_counts_leading_zeros_from_the_top_bit(h):
    assert work.zero_bits(h) == 8 * len(h) - int.from_bytes(h, "big").bit_length()


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=40), st.binary(min_size=32, max_size=32), st.integers(0, 3))
def test_a_nonce_meets_exactly_when_its_argon2id_hash_has_the_bits(nonce, challenge, bits):
    ok = work.meets(nonce, challenge, bits, 1, 8192)
    if not work.MIN_NONCE <= len(nonce) <= work.MAX_NONCE:
        assert ok is False
    else:
        assert ok == (bits == 0 or work.zero_bits(work.digest(nonce, challenge, 1, 8192)) >= bits)


@SETTINGS
@given(st.integers(0, 24), st.integers(0, 255), st.integers(0, 7))
def test_a_challenge_with_any_bit_flipped_is_not_one_the_server_made(bits, byte, bit):
    issued = gateway_pow.issue(SECRET, bits, PowSettings(ops=1, mem=1 << 20))
    read = gateway_pow.read(SECRET, b64(issued.challenge))
    assert (read.bits, read.ops, read.mem, read.expires) == (issued.bits, issued.ops, issued.mem, issued.expires)
    flipped = bytearray(issued.challenge)
    flipped[byte % 32] ^= 1 << bit
    with pytest.raises(ApiError) as caught:
        gateway_pow.read(SECRET, b64(bytes(flipped)))
    assert (caught.value.status, caught.value.code) == (400, "bad_pow")
    with pytest.raises(ApiError):
        gateway_pow.read(secrets.token_bytes(32), b64(issued.challenge))  # another deployment's secret


@SETTINGS
@given(st.text(max_size=80))
def test_any_challenge_text_is_read_or_refused_as_bad_pow(text):
    try:
        gateway_pow.read(SECRET, text)
    except ApiError as exc:
        assert (exc.status, exc.code) == (400, "bad_pow")
    else:
        raise AssertionError("a made-up challenge was accepted")


@SETTINGS
@given(json_values)
def test_any_json_body_parses_or_is_bad_json(value):
    raw = json.dumps(value).encode()
    try:
        assert parse_json(raw) == value
    except ApiError as exc:
        assert (exc.status, exc.code) == (400, "bad_json")
