"""The citizen pages without JavaScript (PRODUCT.md promise 2, CRYPTO.md "Envelope").

With scripts off the server does what the citizen's browser would: it makes
the pickup code, derives `Z` from it, seals exactly the envelope CRYPTO.md
describes, drops its reference to the plaintext at once and flags the thread
`sealed_by = "server"`. Picking up, the server derives `Z` from the posted
code, opens the envelopes addressed to `kid(Z.pk)` for this one answer and
forgets everything. Nothing of the code, `master`, `Z.sk` or any plaintext is
stored or logged.

Forms carry a sealed, expiring, one-time ticket (see `issue`/`redeem`), so the
answer to a POST cannot be re-submitted from the history (the back button) to
show a code or a conversation again, or to send a message twice.
"""

import datetime as dt
import json
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError

from crypto import CryptoError, b64, derive_citizen, generate_code, open_envelope, seal_envelope, unb64
from crypto.derive import public_key
from crypto.encoding import blake2b
from gateway import secretbox
from gateway.db import Database
from gateway.errors import Conflict, NotFound
from gateway.kdfgate import KdfGate
from gateway.models import RateLimit, Thread
from gateway.services import threads
from gateway.services.meta import get_code_salt, previous_kdf
from gateway.services.teams import offered_teams, team_keys
from gateway.settings import Settings

# How long a form (the write page, the pickup page, a shown conversation) may
# stay open before pressing a button; spent tickets are remembered that long.
TICKET_SECONDS = 2 * 60 * 60
NONCE_BYTES = 16
# Spent tickets live in `rate_limits` as `once:<keyed hash of the nonce>` with
# `window_start` = the ticket's expiry (epoch seconds), so the purge job's
# clean-up of old windows removes them a day after they stop mattering.
ONCE_PREFIX = "once:"
# Purposes keep a write or pickup form ticket from being used as a thread ticket.
FORM = "citizen form"
THREAD = "citizen thread"


class TicketError(Exception):
    """A form ticket that is unreadable, expired (`expired`) or already used (`used`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, repr=False)
class Ticket:
    nonce: bytes
    expires: int
    payload: bytes


def issue(secret_key: bytes, purpose: str, payload: bytes = b"", now: float | None = None) -> str:
    """A sealed ticket: nonce || expiry || payload under a key derived from the server secret."""
    expires = int(now if now is not None else time.time()) + TICKET_SECONDS
    inner = secrets.token_bytes(NONCE_BYTES) + expires.to_bytes(8, "big") + payload
    return b64(secretbox.seal(secret_key, purpose, inner))


def read(secret_key: bytes, purpose: str, text: str, now: float | None = None) -> Ticket:
    try:
        inner = secretbox.unseal(secret_key, purpose, unb64(text))
    except (CryptoError, ValueError):
        raise TicketError("invalid") from None
    if len(inner) < NONCE_BYTES + 8:
        raise TicketError("invalid")
    expires = int.from_bytes(inner[NONCE_BYTES : NONCE_BYTES + 8], "big")
    if expires < int(now if now is not None else time.time()):
        raise TicketError("expired")
    return Ticket(inner[:NONCE_BYTES], expires, inner[NONCE_BYTES + 8 :])


async def redeem(db: Database, secret_key: bytes, purpose: str, text: str) -> Ticket:
    """Check a ticket and mark it used, atomically across processes (a primary key)."""
    ticket = read(secret_key, purpose, text)
    bucket = ONCE_PREFIX + b64(secretbox.keyed_hash(secret_key, "citizen once", ticket.nonce))
    try:
        async with db.write() as session:
            await session.execute(
                sql_delete(RateLimit).where(RateLimit.bucket.startswith(ONCE_PREFIX), RateLimit.window_start < int(time.time()))
            )
            session.add(RateLimit(bucket=bucket, window_start=ticket.expires, count=1))
    except IntegrityError:
        raise TicketError("used") from None
    return ticket


@dataclass(frozen=True)
class TeamChoice:
    id: str
    name: str


async def teams(db: Database) -> list[TeamChoice]:
    async with db.read() as session:
        return [TeamChoice(team.id, team.name) for team, _key in await offered_teams(session)]


def text_problem(text: str, max_chars: int) -> str | None:
    """`empty` or `too_long` (Unicode code points, like the browser's check), else None."""
    if not text.strip():
        return "empty"
    if len(text) > max_chars:
        return "too_long"
    return None


def _limits(settings: Settings) -> threads.Limits:
    return threads.Limits(settings.retention_days, settings.max_envelope_bytes)


async def _current_team_pk(db: Database, team_id: str) -> bytes:
    async with db.read() as session:
        keys = await team_keys(session, team_id)
    if keys.current is None:
        raise NotFound("unknown_team", f"team {team_id} takes no messages now")
    return keys.current.pk


async def _sealed_retrying(db: Database, team_id: str, citizen_pk: bytes, text: str, send) -> None:  # type: ignore[no-untyped-def]
    """Seal {"text"} to the team's current key and Z.pk, and send; once more if the key was just rotated."""
    for attempt in (1, 2):
        envelope = seal_envelope({"text": text}, [await _current_team_pk(db, team_id), citizen_pk])
        try:
            await send(envelope)
            return
        except Conflict as exc:
            if exc.code != CryptoError.STALE_TEAM_KEY or attempt == 2:
                raise


async def write(db: Database, settings: Settings, gate: KdfGate, team_id: str, text: str) -> str:
    """Create a server-sealed thread; the new pickup code (16 digits), which the caller shows once."""
    async with db.read() as session:
        salt = await get_code_salt(session)
    code = generate_code()
    # Argon2id off the event loop and bounded: the server keeps answering other people meanwhile.
    keys = await gate.run(derive_citizen, code, salt, settings.kdf_ops, settings.kdf_mem)

    async def send(envelope: dict) -> None:
        await threads.create_thread(
            db, _limits(settings), team_id=team_id, citizen_pk=keys.pk,
            access_token=keys.access_token, envelope=envelope, sealed_by="server",
        )

    await _sealed_retrying(db, team_id, keys.pk, text, send)
    return code


@dataclass(frozen=True, repr=False)
class Keys:
    """What the code yields after Argon2id: `master` and what BLAKE2b makes of it (CRYPTO.md)."""

    master: bytes

    @property
    def sk(self) -> bytes:
        return blake2b(32, b"fristed citizen key v1", key=self.master)

    @property
    def pk(self) -> bytes:
        return public_key(self.sk)

    @property
    def access_token(self) -> bytes:
        return blake2b(32, b"fristed access token v1", key=self.master)


async def keys_from_code(db: Database, settings: Settings, gate: KdfGate, digits: str) -> Keys:
    """Argon2id with the cost the code was made under: the current one, else each earlier one in turn.

    Returns the current cost's keys when no thread is found (the caller then says so).
    """
    async with db.read() as session:
        salt = await get_code_salt(session)
        earlier = await previous_kdf(session, settings.kdf_ops, settings.kdf_mem, settings.retention_days)
    first: Keys | None = None
    for ops, mem in [(settings.kdf_ops, settings.kdf_mem)] + [(k.ops, k.mem) for k in earlier]:
        keys = Keys((await gate.run(derive_citizen, digits, salt, ops, mem)).master)
        first = first or keys
        if not earlier or await threads.exists(db, keys.access_token):
            return keys
    assert first is not None
    return first


@dataclass(frozen=True, repr=False)
class Shown:
    """One message as the page shows it; `text` is None when it could not be opened."""

    seq: int
    sender: str
    at: dt.datetime
    text: str | None


@dataclass(frozen=True, repr=False)
class Conversation:
    thread: Thread
    messages: list[Shown]


async def conversation(db: Database, keys: Keys) -> Conversation:
    """Open the thread and every envelope addressed to `kid(Z.pk)`; NotFound for an unknown code."""
    thread, messages = await threads.open_thread(db, keys.access_token)
    sk = keys.sk
    shown = []
    for message in messages:
        try:
            text: str | None = open_envelope(json.loads(message.envelope), sk)["text"]
        except (CryptoError, ValueError):
            text = None  # one clear placeholder on the page, never a crash
        shown.append(Shown(message.seq, message.sender, message.at, text))
    return Conversation(thread, shown)


async def reply(db: Database, settings: Settings, keys: Keys, text: str) -> None:
    """A citizen reply sealed by the server; the thread is then flagged `sealed_by = "server"`."""
    async with db.read() as session:
        thread = await threads.find_thread(session, keys.access_token)
    token = keys.access_token

    async def send(envelope: dict) -> None:
        await threads.citizen_reply(db, _limits(settings), token, envelope)

    await _sealed_retrying(db, thread.team_id, thread.citizen_pk, text, send)
    await threads.mark_sealed_by_server(db, token)


async def delete(db: Database, keys: Keys) -> None:
    await threads.delete_thread(db, keys.access_token)

