"""The 16-digit pickup code: 15 random digits and a Damm check digit (CRYPTO.md)."""

import secrets

from crypto.errors import CryptoError

# The Damm quasigroup of order 10 (weakly totally anti-symmetric): catches
# every single-digit error and every adjacent transposition.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

CODE_DIGITS = 16

# Arabic-Indic (U+0660..) and Extended Arabic-Indic / Persian (U+06F0..) digits.
_TO_ASCII = {0x0660 + i: ord("0") + i for i in range(10)} | {
    0x06F0 + i: ord("0") + i for i in range(10)
}


def damm_digit(digits: str) -> str:
    """The Damm check digit of an ASCII digit string."""
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return str(interim)


def generate_code() -> str:
    """A fresh code as 16 ASCII digits: 15 uniform (CSPRNG, no modulo bias) + check digit."""
    # secrets.randbelow rejects out-of-range draws, so every value is equally likely.
    body = f"{secrets.randbelow(10**15):015d}"
    return body + damm_digit(body)


def normalise_code(text: str) -> str:
    """Turn what a person typed into 16 ASCII digits, or raise `CryptoError`.

    Arabic-Indic and Persian digits become ASCII; every other non-digit
    (spaces, dashes, dots) is dropped; the result must be 16 digits whose
    Damm check passes.
    """
    converted = text.translate(_TO_ASCII)
    digits = "".join(ch for ch in converted if "0" <= ch <= "9")
    if len(digits) != CODE_DIGITS:
        raise CryptoError(CryptoError.BAD_LENGTH, "a pickup code has 16 digits")
    if damm_digit(digits) != "0":
        raise CryptoError(CryptoError.BAD_CHECK_DIGIT, "the pickup code has a typing error")
    return digits


def format_code(digits: str) -> str:
    """Four groups of four: `4821 0937 5562 1187`."""
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
