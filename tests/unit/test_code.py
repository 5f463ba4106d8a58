"""The pickup code: CSPRNG digits, Damm check digit, normalisation (CRYPTO.md "Pickup code")."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import CryptoError, format_code, generate_code, normalise_code
from crypto.code import damm_digit

fifteen_digits = st.text(alphabet="0123456789", min_size=15, max_size=15)


def test_a_generated_code_is_16_digits_that_pass_their_own_check():
    for _ in range(200):
        code = generate_code()
        assert len(code) == 16 and code.isdigit()
        assert normalise_code(code) == code


def test_generated_digits_are_spread_over_all_ten_values():
    counts = Counter("".join(generate_code()[:15] for _ in range(400)))
    assert set(counts) == set("0123456789")
    # 6000 draws: each digit ~600; a grossly biased generator would fall far outside this.
    assert all(450 < n < 750 for n in counts.values()), counts


@given(fifteen_digits, st.integers(0, 15), st.integers(1, 9))
def test_every_single_digit_typo_is_caught(body, position, delta):
    code = body + damm_digit(body)
    typo = code[:position] + str((int(code[position]) + delta) % 10) + code[position + 1 :]
    with pytest.raises(CryptoError) as caught:
        normalise_code(typo)
    assert caught.value.code == CryptoError.BAD_CHECK_DIGIT


@given(fifteen_digits, st.integers(0, 14))
def test_every_adjacent_transposition_is_caught(body, position):
    code = body + damm_digit(body)
    if code[position] == code[position + 1]:
        return
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    with pytest.raises(CryptoError):
        normalise_code(swapped)


@pytest.mark.parametrize(
    "typed",
    [
        "{a} {b} {c} {d}",
        "{a}-{b}-{c}-{d}",
        " {a}.{b}\t{c}\n{d} ",
    ],
)
def test_separators_are_ignored(typed):
    code = generate_code()
    a, b, c, d = (code[i : i + 4] for i in range(0, 16, 4))
    assert normalise_code(typed.format(a=a, b=b, c=c, d=d)) == code


def test_arabic_indic_and_persian_digits_become_ascii():
    code = generate_code()
    arabic = code.translate({48 + i: 0x0660 + i for i in range(10)})
    persian = code.translate({48 + i: 0x06F0 + i for i in range(10)})
    mixed = arabic[:8] + " " + persian[8:]
    assert normalise_code(arabic) == normalise_code(persian) == normalise_code(mixed) == code


@pytest.mark.parametrize("typed", ["", "1234", "1" * 17, "abcd efgh ijkl mnop"])
def test_a_code_of_the_wrong_length_is_refused(typed):
    with pytest.raises(CryptoError) as caught:
        normalise_code(typed)
    assert caught.value.code == CryptoError.BAD_LENGTH


def test_a_code_is_shown_in_four_groups_of_four():
    assert format_code("4821093755621187") == "4821 0937 5562 1187"
