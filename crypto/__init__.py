"""Fristed cryptography, version 1 (CRYPTO.md) and envelope v2 (crypto/README.md): the Python half.

Everything here is plain libsodium through PyNaCl, so the browser half
(`crypto/js/`, libsodium.js) computes the same bytes. `crypto/vectors.json`
pins both to the same outputs.
"""

from crypto.code import format_code, generate_code, normalise_code
from crypto.derive import (
    CitizenKeys,
    StaffKeys,
    derive_citizen,
    derive_staff,
    lookup_for,
    open_key_blob,
    seal_key_blob,
)
from crypto.encoding import b64, kid, unb64
from crypto.envelope import (
    Envelope,
    check_recipients,
    open_envelope,
    parse_envelope,
    seal_envelope,
)
from crypto.envelope2 import Binding, open_v2, read_as_citizen, read_as_team, seal_v2
from crypto.errors import CryptoError

__all__ = [
    "Binding",
    "CitizenKeys",
    "CryptoError",
    "Envelope",
    "StaffKeys",
    "b64",
    "check_recipients",
    "derive_citizen",
    "derive_staff",
    "format_code",
    "generate_code",
    "kid",
    "lookup_for",
    "normalise_code",
    "open_envelope",
    "open_key_blob",
    "open_v2",
    "parse_envelope",
    "read_as_citizen",
    "read_as_team",
    "seal_envelope",
    "seal_key_blob",
    "seal_v2",
    "unb64",
]
