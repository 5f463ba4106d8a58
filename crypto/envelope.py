"""The envelope: one wire format for every message, reply and note (CRYPTO.md).

`seal_envelope`/`open_envelope` are what a reader or writer does;
`parse_envelope` + `check_recipients` are what the server does, which can
only check shape, never content. The byte-level format and the MUST-reject
rules are written down in `crypto/README.md`.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils
import orjson

from crypto.derive import XNONCE_BYTES, public_key
from crypto.encoding import b64, blake2b, kid, unb64
from crypto.errors import CryptoError

VERSION = 1
AAD = b"fristed/v1"
PAD_BLOCK = 1024
KEY_BYTES = 32
SEAL_BYTES = 32 + 16 + KEY_BYTES  # ephemeral pk + MAC + K
KID_BYTES = 16
MAX_RECIPIENTS = 8
TAG_BYTES = 16
_FIELDS = {"v", "keys", "nonce", "ct"}
_KEY_FIELDS = {"kid", "box"}


@dataclass(frozen=True)
class Envelope:
    """A shape-checked envelope; `kids` in the order they appear; `header` is a version 2
    envelope's parsed header (`crypto.envelope2.Header`), kept so nobody parses it twice."""

    kids: tuple[str, ...]
    data: dict
    header: Any = field(default=None, compare=False)

    @property
    def version(self) -> int:
        return int(self.data["v"])

    @cached_property
    def _json(self) -> str:
        # orjson: the same bytes as `json.dumps(data, separators=(",", ":"), sort_keys=True)` for a
        # parsed envelope (ASCII strings and small integers only, which the parsers ensure; a
        # test holds the two to each other) in a fifteenth of the time (issue 9).
        return orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS).decode("ascii")

    def to_json(self) -> str:
        """The canonical JSON (compact, keys sorted), made once: the size check and the INSERT share it."""
        return self._json


def seal_box(pk: bytes, message: bytes, ephemeral_sk: bytes | None = None) -> bytes:
    """`crypto_box_seal`; with `ephemeral_sk` it is computed step by step, deterministically.

    The deterministic path exists for the test vectors only: it builds the same
    bytes libsodium's sealed box does (`epk || crypto_box_easy(m, BLAKE2b(24, epk||pk))`).
    """
    if ephemeral_sk is None:
        return sodium.crypto_box_seal(message, pk)
    epk = public_key(ephemeral_sk)
    nonce = blake2b(24, epk + pk)
    return epk + sodium.crypto_box(message, nonce, pk, ephemeral_sk)


def seal_envelope(
    plaintext: Mapping,
    recipients: Iterable[bytes],
    *,
    content_key: bytes | None = None,
    nonce: bytes | None = None,
    ephemeral_sks: Iterable[bytes] | None = None,
) -> dict:
    """Encrypt a JSON object to every recipient public key; returns the envelope dict.

    `content_key`, `nonce` and `ephemeral_sks` are for test vectors; leave them
    out and they are random.
    """
    if "text" not in plaintext:
        raise CryptoError(CryptoError.PARSE, "a plaintext needs a text field")
    pks = list(recipients)
    k = nacl.utils.random(KEY_BYTES) if content_key is None else content_key
    n = nacl.utils.random(XNONCE_BYTES) if nonce is None else nonce
    esks: list[bytes | None] = list(ephemeral_sks) if ephemeral_sks is not None else [None] * len(pks)
    body = json.dumps(dict(plaintext), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    padded = sodium.sodium_pad(body, PAD_BLOCK)
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, AAD, n, k)
    return {
        "v": VERSION,
        "keys": [{"kid": kid(pk), "box": b64(seal_box(pk, k, esk))} for pk, esk in zip(pks, esks, strict=True)],
        "nonce": b64(n),
        "ct": b64(ct),
    }


def parse_envelope(data: object, *, max_bytes: int) -> Envelope:
    """Check an envelope's shape (what the server can check) or raise `bad_envelope`.

    A version 2 envelope is checked by `crypto.envelope2.parse_v2`. Version 1 rules (crypto/README.md): an object with exactly `v`, `keys`, `nonce`,
    `ct`; `v` is the integer 1; 1..8 recipients with distinct 16-byte kids and
    80-byte boxes; a 24-byte nonce; `ct` a whole number of 1024-byte blocks
    plus the 16-byte tag; the canonical JSON no larger than `max_bytes`.
    """

    def bad(message: str) -> CryptoError:
        return CryptoError(CryptoError.BAD_ENVELOPE, message)

    if isinstance(data, dict) and type(data.get("v")) is int and data["v"] == 2:
        from crypto.envelope2 import parse_v2

        return parse_v2(data, max_bytes=max_bytes)[0]
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise bad("an envelope is an object with exactly v, keys, nonce and ct")
    if type(data["v"]) is not int or data["v"] != VERSION:
        raise bad("unsupported envelope version")
    keys = data["keys"]
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_RECIPIENTS:
        raise bad(f"an envelope has 1 to {MAX_RECIPIENTS} recipients")
    kids: list[str] = []
    try:
        for entry in keys:
            if not isinstance(entry, dict) or set(entry) != _KEY_FIELDS:
                raise bad("each recipient is an object with exactly kid and box")
            unb64(entry["kid"], length=KID_BYTES, field="kid")
            unb64(entry["box"], length=SEAL_BYTES, field="box")
            kids.append(entry["kid"])
        unb64(data["nonce"], length=XNONCE_BYTES, field="nonce")
        ct = unb64(data["ct"], field="ct")
    except CryptoError as exc:
        raise bad(f"envelope: {exc.message}") from None
    if len(set(kids)) != len(kids):
        raise bad("a recipient appears twice")
    if len(ct) < PAD_BLOCK + TAG_BYTES or (len(ct) - TAG_BYTES) % PAD_BLOCK:
        raise bad("ct is not padded to 1024-byte blocks")
    envelope = Envelope(tuple(kids), data)
    if len(envelope.to_json().encode("ascii")) > max_bytes:
        raise CryptoError(CryptoError.BAD_ENVELOPE, "the envelope is too large")
    return envelope


def check_recipients(envelope: Envelope, required: set[str], retired_team_kids: set[str]) -> None:
    """Enforce INTERFACES.md's recipient rule: exactly `required`, nothing else.

    A set that differs only by naming a retired key of the team instead of the
    current one is a client that read `/config` before a rotation:
    `stale_team_key` (409), so it can re-seal.
    """
    kids = set(envelope.kids)
    if kids == required:
        return
    missing = required - kids
    extra = kids - required
    if extra and extra <= retired_team_kids and len(missing) == 1 and len(extra) == 1:
        raise CryptoError(CryptoError.STALE_TEAM_KEY, "the team key was rotated; seal to the new key")
    raise CryptoError(CryptoError.BAD_ENVELOPE, "the envelope is not sealed to the required recipients")


def open_envelope(data: object, sk: bytes) -> dict:
    """Decrypt an envelope with one recipient secret key; the plaintext JSON object.

    Failures: `parse` (not an envelope, bad padding or JSON), `wrong_key` (not
    addressed to this key, or its box does not open), `authentication`
    (the content was tampered with).
    """
    if not isinstance(data, dict) or type(data.get("v")) is not int or data["v"] != VERSION:
        raise CryptoError(CryptoError.PARSE, "not a version 1 envelope")
    try:
        envelope = parse_envelope(data, max_bytes=1 << 30)
    except CryptoError as exc:
        raise CryptoError(CryptoError.PARSE, exc.message) from None
    pk = public_key(sk)
    mine = kid(pk)
    box = next((e["box"] for e in envelope.data["keys"] if e["kid"] == mine), None)
    if box is None:
        raise CryptoError(CryptoError.WRONG_KEY, "this message is not addressed to this key")
    try:
        k = sodium.crypto_box_seal_open(unb64(box), pk, sk)
    except nacl.exceptions.CryptoError:
        raise CryptoError(CryptoError.WRONG_KEY, "this message could not be opened with this key") from None
    try:
        padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            unb64(envelope.data["ct"]), AAD, unb64(envelope.data["nonce"]), k
        )
    except nacl.exceptions.CryptoError:
        raise CryptoError(CryptoError.AUTHENTICATION, "the message was altered") from None
    try:
        body = sodium.sodium_unpad(padded, PAD_BLOCK)
        plaintext = json.loads(body.decode("utf-8"))
    except (nacl.exceptions.CryptoError, UnicodeDecodeError, ValueError):
        raise CryptoError(CryptoError.PARSE, "the message content is malformed") from None
    if not isinstance(plaintext, dict) or not isinstance(plaintext.get("text"), str):
        raise CryptoError(CryptoError.PARSE, "the message content is malformed")
    return plaintext
