"""`b64` is URL-safe base64 without padding, and nothing else is accepted."""

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import CryptoError, b64, kid, unb64


@given(st.binary(max_size=200))
def test_b64_round_trips_any_bytes(data):
    text = b64(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert unb64(text) == data


@pytest.mark.parametrize(
    "text",
    [
        "AAAA=",  # padding
        "AA==",  # padding
        "ab+/",  # standard alphabet
        "ab cd",  # whitespace
        "A",  # impossible length
        "AB",  # non-canonical: stray low bits (canonical is "AA")
        123,  # not a string
    ],
)
def test_anything_but_canonical_unpadded_urlsafe_base64_is_refused(text):
    with pytest.raises(CryptoError) as caught:
        unb64(text)
    assert caught.value.code == CryptoError.PARSE


def _reference(text: str) -> bytes | None:
    """The rule spelled out with the standard library: decodable, and the one spelling of its bytes."""
    if len(text) % 4 == 1:
        return None
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return None
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text else None


# Beside the alphabet: what the standard decoder takes ('+', '/', '='), what its lenient mode
# skips (whitespace, other ASCII) and what is not ASCII at all.
_STRAY = "+/= \n\t\x00.*\u00e9\u0660"


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" + _STRAY, max_size=12))
def test_exactly_the_canonical_spellings_are_accepted(text):
    expected = _reference(text) if not set(text) & set(_STRAY) else None
    try:
        assert unb64(text) == expected
    except CryptoError:
        assert expected is None


def test_a_length_is_enforced_when_asked():
    assert unb64(b64(b"x" * 32), length=32) == b"x" * 32
    with pytest.raises(CryptoError):
        unb64(b64(b"x" * 31), length=32)


def test_a_kid_is_16_bytes_of_blake2b_in_b64():
    assert len(unb64(kid(b"\x01" * 32))) == 16
    assert kid(b"\x01" * 32) != kid(b"\x02" * 32)
