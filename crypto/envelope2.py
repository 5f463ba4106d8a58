"""Envelope version 2: authenticated and bound to its place (crypto/README.md "Envelope v2").

Version 1 boxes were anonymous (`crypto_box_seal`), so anyone with the public
keys, e.g. whoever can write the database, could make a message that read as
the consultant's. Version 2 makes every key box with `crypto_box` from the
sender's key (the citizen's `Z` for citizen messages, the thread's pinned team
key `T` for consultant messages and notes) and binds role, `seq`, the thread
(`Z.pk`) and the pinned team key into both the box nonces and the content AAD.

`seal_v2`/`open_v2` are what writers and readers do, `parse_v2` is the
server's shape check, `read_as_citizen` is the citizen reader's whole rule
(pinning included), shared by the no-script path and mirrored in
`crypto/js/envelope2.mjs`.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from crypto.derive import XNONCE_BYTES, public_key
from crypto.encoding import b64, blake2b, kid, unb64
from crypto.envelope import KEY_BYTES, KID_BYTES, PAD_BLOCK, TAG_BYTES, Envelope, open_envelope
from crypto.errors import CryptoError

VERSION = 2
CITIZEN, CONSULTANT, NOTE = "citizen", "consultant", "note"
ROLES = (CITIZEN, CONSULTANT, NOTE)
BOX_BYTES = 16 + KEY_BYTES  # crypto_box_easy(K): MAC + K
PK_BYTES = 32
MAX_SEQ = 2**31 - 1
FIELDS = frozenset({"v", "from", "seq", "thread", "team", "keys", "nonce", "ct"})
_KEY_FIELDS = {"kid", "box"}


@dataclass(frozen=True)
class Binding:
    """Where a message belongs: its sender role, its `seq`, its thread (`Z.pk`) and the pinned team key."""

    role: str
    seq: int
    citizen_pk: bytes
    team_pk: bytes

    def aad(self) -> bytes:
        """`fristed/v2|<role>|<seq>|<b64 Z.pk>|<b64 T.pk>` in ASCII: the content AAD."""
        return f"fristed/v2|{self.role}|{self.seq}|{b64(self.citizen_pk)}|{b64(self.team_pk)}".encode("ascii")

    def box_nonce(self, nonce: bytes, recipient_pk: bytes) -> bytes:
        """`BLAKE2b(24, aad || nonce || R.pk)`: each box is bound to the same place as the content."""
        return blake2b(24, self.aad() + nonce + recipient_pk)

    def recipients(self) -> list[bytes]:
        """In this order: the team key, then (except for a note) the citizen key."""
        return [self.team_pk] if self.role == NOTE else [self.team_pk, self.citizen_pk]

    def sender_pk(self) -> bytes:
        return self.citizen_pk if self.role == CITIZEN else self.team_pk

    def check(self) -> None:
        if self.role not in ROLES:
            raise CryptoError(CryptoError.PARSE, "role is citizen, consultant or note")
        if type(self.seq) is not int or not (self.seq == 0 if self.role == NOTE else 1 <= self.seq <= MAX_SEQ):
            raise CryptoError(CryptoError.PARSE, "seq is 0 for a note, else 1 to 2^31-1")
        if len(self.citizen_pk) != PK_BYTES or len(self.team_pk) != PK_BYTES:
            raise CryptoError(CryptoError.PARSE, "keys are 32 bytes")


def seal_v2(
    plaintext: Mapping,
    binding: Binding,
    sender_sk: bytes,
    *,
    content_key: bytes | None = None,
    nonce: bytes | None = None,
) -> dict:
    """Seal a JSON object for `binding`, authenticated by `sender_sk` (Z.sk or T.sk by role).

    `content_key` and `nonce` are for the test vectors; left out they are random.
    """
    body = json.dumps(dict(plaintext), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return seal_v2_bytes(body, binding, sender_sk, content_key=content_key, nonce=nonce)


def seal_v2_bytes(
    body: bytes, binding: Binding, sender_sk: bytes, *, content_key: bytes | None = None, nonce: bytes | None = None
) -> dict:
    """`seal_v2` for a plaintext already serialised (UTF-8 JSON object with a string `text`)."""
    binding.check()
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CryptoError(CryptoError.PARSE, "the plaintext is not JSON") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("text"), str):
        raise CryptoError(CryptoError.PARSE, "a plaintext needs a text field")
    if public_key(sender_sk) != binding.sender_pk():
        raise CryptoError(CryptoError.BINDING, f"a {binding.role} message is made with the {binding.role}'s own key")
    k = nacl.utils.random(KEY_BYTES) if content_key is None else content_key
    n = nacl.utils.random(XNONCE_BYTES) if nonce is None else nonce
    aad = binding.aad()
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(sodium.sodium_pad(body, PAD_BLOCK), aad, n, k)
    keys = [
        {"kid": kid(pk), "box": b64(sodium.crypto_box(k, binding.box_nonce(n, pk), pk, sender_sk))}
        for pk in binding.recipients()
    ]
    return {
        "v": VERSION,
        "from": binding.role,
        "seq": binding.seq,
        "thread": kid(binding.citizen_pk),
        "team": b64(binding.team_pk),
        "keys": keys,
        "nonce": b64(n),
        "ct": b64(ct),
    }


@dataclass(frozen=True)
class Header:
    """The clear part of a v2 envelope: what it declares about itself (checkable without keys)."""

    role: str
    seq: int
    thread_kid: str
    team_pk: bytes

    @property
    def team_kid(self) -> str:
        return kid(self.team_pk)


def parse_v2(data: object, *, max_bytes: int) -> tuple[Envelope, Header]:
    """The server's (and every reader's) shape check of a v2 envelope, or `bad_envelope`.

    Exactly the eight fields; `v` the integer 2; `from` a role; `seq` 0 for a
    note, else 1 to 2^31-1; `thread` a kid, `team` a 32-byte key; `keys` the
    team kid then (except for a note) the thread kid, each with a 48-byte box;
    a 24-byte nonce; `ct` padded to 1024-byte blocks; at most `max_bytes`.
    """

    def bad(message: str) -> CryptoError:
        return CryptoError(CryptoError.BAD_ENVELOPE, message)

    if not isinstance(data, dict) or set(data) != FIELDS:
        raise bad("a version 2 envelope has exactly v, from, seq, thread, team, keys, nonce and ct")
    if type(data["v"]) is not int or data["v"] != VERSION:
        raise bad("unsupported envelope version")
    role, seq = data["from"], data["seq"]
    if role not in ROLES:
        raise bad("from is citizen, consultant or note")
    if type(seq) is not int or not (seq == 0 if role == NOTE else 1 <= seq <= MAX_SEQ):
        raise bad("seq is 0 for a note, else 1 to 2^31-1")
    try:
        thread_kid = data["thread"]
        unb64(thread_kid, length=KID_BYTES, field="thread")
        team_pk = unb64(data["team"], length=PK_BYTES, field="team")
        keys = data["keys"]
        want = [kid(team_pk)] if role == NOTE else [kid(team_pk), thread_kid]
        if not isinstance(keys, list) or len(keys) != len(want):
            raise bad("a note has one key box (the team's), a message two (the team's, then the citizen's)")
        for entry, expected in zip(keys, want, strict=True):
            if not isinstance(entry, dict) or set(entry) != _KEY_FIELDS:
                raise bad("each recipient is an object with exactly kid and box")
            if entry["kid"] != expected:
                raise bad("the key boxes are for the team key, then the citizen key named in the header")
            unb64(entry["box"], length=BOX_BYTES, field="box")
        unb64(data["nonce"], length=XNONCE_BYTES, field="nonce")
        ct = unb64(data["ct"], field="ct")
    except CryptoError as exc:
        if exc.code == CryptoError.BAD_ENVELOPE:
            raise
        raise bad(f"envelope: {exc.message}") from None
    if len(ct) < PAD_BLOCK + TAG_BYTES or (len(ct) - TAG_BYTES) % PAD_BLOCK:
        raise bad("ct is not padded to 1024-byte blocks")
    header = Header(role, seq, thread_kid, team_pk)
    envelope = Envelope(tuple(want), data, header)
    if len(envelope.to_json().encode("ascii")) > max_bytes:
        raise bad("the envelope is too large")
    return envelope, header


def header_of(data: object) -> Header:
    """The header of a well-formed v2 envelope, or `parse`."""
    try:
        return parse_v2(data, max_bytes=1 << 30)[1]
    except CryptoError as exc:
        raise CryptoError(CryptoError.PARSE, exc.message) from None


def open_v2(data: object, reader_sk: bytes, binding: Binding) -> dict:
    """Open and verify a v2 envelope the reader expects at `binding`; the plaintext object.

    Failures, in this order: `parse` (not a v2 envelope), `binding` (its header
    names another role, seq, thread or team key than expected), `wrong_key`
    (not addressed to the reader), `authentication` (a box or the content does
    not open: not made by the expected sender for this exact place, or altered),
    `parse` (the content is not a JSON object with a string `text`).
    """
    binding.check()
    header = header_of(data)
    assert isinstance(data, dict)
    if (header.role, header.seq, header.thread_kid, header.team_pk) != (
        binding.role, binding.seq, kid(binding.citizen_pk), binding.team_pk
    ):
        raise CryptoError(CryptoError.BINDING, "this message belongs to another place in a conversation")
    reader_pk = public_key(reader_sk)
    box = next((e["box"] for e in data["keys"] if e["kid"] == kid(reader_pk)), None)
    if box is None:
        raise CryptoError(CryptoError.WRONG_KEY, "this message is not addressed to this key")
    nonce = unb64(data["nonce"])
    try:
        k = sodium.crypto_box_open(unb64(box), binding.box_nonce(nonce, reader_pk), binding.sender_pk(), reader_sk)
        padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(unb64(data["ct"]), binding.aad(), nonce, k)
    except nacl.exceptions.CryptoError:
        raise CryptoError(CryptoError.AUTHENTICATION, "the message is not authentic here") from None
    try:
        plaintext = json.loads(sodium.sodium_unpad(padded, PAD_BLOCK).decode("utf-8"))
    except (nacl.exceptions.CryptoError, UnicodeDecodeError, ValueError):
        raise CryptoError(CryptoError.PARSE, "the message content is malformed") from None
    if not isinstance(plaintext, dict) or not isinstance(plaintext.get("text"), str):
        raise CryptoError(CryptoError.PARSE, "the message content is malformed")
    return plaintext


@dataclass(frozen=True, repr=False)
class Read:
    """One message as a reader may present it.

    `verified`: authentic at its place. `text` is None unless verified, except
    the text of a version 1 envelope in a thread without any version 2
    envelope (a thread from before authentication), which stays readable and
    is always marked unverified.
    """

    seq: int
    sender: str
    verified: bool
    text: str | None


def version_of(envelope: object) -> int | None:
    value = envelope.get("v") if isinstance(envelope, dict) else None
    return value if type(value) is int else None


def citizen_pin(messages: Iterable[tuple[int, str, object]], z_sk: bytes) -> bytes | None:
    """The team key the thread is pinned to: the `team` of its earliest citizen message that verifies."""
    z_pk = public_key(z_sk)
    for seq, sender, envelope in sorted(messages, key=lambda m: m[0]):
        if sender != CITIZEN or version_of(envelope) != VERSION:
            continue
        try:
            team_pk = header_of(envelope).team_pk
            open_v2(envelope, z_sk, Binding(CITIZEN, seq, z_pk, team_pk))
        except CryptoError:
            continue
        return team_pk
    return None


def read_as_citizen(messages: Iterable[tuple[int, str, object]], z_sk: bytes) -> list[Read]:
    """The citizen reader's rule for a whole conversation: `(seq, from, envelope)` rows → what to show.

    A citizen or consultant message is verified only as a v2 envelope that
    opens at its own row's seq and role, in this thread (`Z.pk`), for the
    pinned team key (`citizen_pin`). Nothing else is ever shown as its sender's.
    """
    rows = sorted(messages, key=lambda m: m[0])
    z_pk = public_key(z_sk)
    pin = citizen_pin(rows, z_sk)
    legacy = all(version_of(envelope) != VERSION for _seq, _sender, envelope in rows)
    out = []
    for seq, sender, envelope in rows:
        text: str | None = None
        verified = False
        if version_of(envelope) == VERSION and pin is not None and sender in (CITIZEN, CONSULTANT):
            try:
                text = open_v2(envelope, z_sk, Binding(sender, seq, z_pk, pin))["text"]
                verified = True
            except CryptoError:
                text = None
        elif legacy and version_of(envelope) == 1:
            try:
                text = open_envelope(envelope, z_sk)["text"]
            except CryptoError:
                text = None
        out.append(Read(seq, sender, verified, text))
    return out


@dataclass(frozen=True, repr=False)
class TeamRead:
    pin: str | None
    messages: list[Read]
    notes: list[Read]


def read_as_team(
    messages: Iterable[tuple[int, str, object]], notes: Iterable[object], citizen_pk: bytes, team_sks: Mapping[str, bytes]
) -> TeamRead:
    """The team reader's rule (the staff inbox, `readAsTeam` in crypto/js/envelope2.mjs).

    `team_sks` maps kid → team secret key the reader holds. The pin is the
    `team` of the earliest citizen message that verifies (made with Z for this
    thread, `citizen_pk`); consultant messages and notes verify only with that
    pinned key, so a retired key (a removed consultant's) cannot speak in a
    thread pinned to another one. Notes come back in the order given, `seq` 0.
    """
    rows = sorted(messages, key=lambda m: m[0])
    note_list = list(notes)
    pin: bytes | None = None
    for seq, sender, envelope in rows:
        if sender != CITIZEN or version_of(envelope) != VERSION:
            continue
        try:
            team_pk = header_of(envelope).team_pk
            sk = team_sks.get(kid(team_pk))
            if sk is None:
                continue
            open_v2(envelope, sk, Binding(CITIZEN, seq, citizen_pk, team_pk))
        except CryptoError:
            continue
        pin = team_pk
        break
    legacy = all(version_of(e) != VERSION for e in [r[2] for r in rows] + note_list)

    def one(envelope: object, role: str, seq: int) -> tuple[bool, str | None]:
        if version_of(envelope) == VERSION and pin is not None and role in ROLES:
            try:
                return True, open_v2(envelope, team_sks[kid(pin)], Binding(role, seq, citizen_pk, pin))["text"]
            except CryptoError:
                return False, None
        if legacy and version_of(envelope) == 1 and isinstance(envelope, dict):
            for entry in envelope.get("keys") or []:
                sk = team_sks.get(str(entry.get("kid"))) if isinstance(entry, dict) else None
                if sk is not None:
                    try:
                        return False, open_envelope(envelope, sk)["text"]
                    except CryptoError:
                        break
        return False, None

    return TeamRead(
        kid(pin) if pin is not None else None,
        [Read(seq, sender, *one(envelope, sender, seq)) for seq, sender, envelope in rows],
        [Read(0, NOTE, *one(envelope, NOTE, 0)) for envelope in note_list],
    )
