"""The one exception type of the crypto package.

Every failure (bad base64, bad check digit, wrong key, tampered ciphertext,
malformed envelope) is a `CryptoError` carrying a stable snake_case `code`, so
callers map it to an HTTP status in one place and never leak which internal
step failed beyond that code.
"""


class CryptoError(Exception):
    """A cryptographic or format failure; `code` is stable and machine-readable."""

    #: codes used across the package (and by the vectors file as "outcome")
    PARSE = "parse"
    AUTHENTICATION = "authentication"
    WRONG_KEY = "wrong_key"
    BAD_CHECK_DIGIT = "bad_check_digit"
    BAD_LENGTH = "bad_length"
    BAD_ENVELOPE = "bad_envelope"
    STALE_TEAM_KEY = "stale_team_key"
    #: a v2 envelope whose clear header names another role, seq, thread or team key than its reader expects
    BINDING = "binding"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
