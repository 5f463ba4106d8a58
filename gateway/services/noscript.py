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
import math
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete as sql_delete

from crypto import (
    CryptoError,
    b64,
    derive_citizen,
    generate_code,
    lookup_for,
    seal_envelope,
    unb64,
)
from crypto.derive import public_key
from crypto.encoding import blake2b
from crypto.envelope2 import Binding, citizen_pin, read_as_citizen, seal_v2, version_of
from gateway import secretbox
from gateway.db import Database, claim_once
from gateway.errors import Conflict, NotFound
from gateway.kdfgate import KdfGate
from gateway.models import RateLimit
from gateway.services import authentic, threads
from gateway.services.meta import get_code_salt, previous_kdf
from gateway.services.teams import offered_teams, team_keys
from gateway.settings import Settings
from gateway.writer import Tx

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
    # A whole minute: the stored spent-ticket row must not date the citizen's visit finer (issue 10).
    expires = math.ceil((int(now if now is not None else time.time()) + TICKET_SECONDS) / 60) * 60
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


def spend(secret_key: bytes, ticket: Ticket) -> threads.Guard:
    """A guard for the write's own transaction: the ticket is used by this write, atomically across
    processes (a primary key), so a ticket is spent only when the write it carries succeeds (issue 8)."""
    bucket = ONCE_PREFIX + b64(secretbox.keyed_hash(secret_key, "citizen once", ticket.nonce))

    def guard(tx: Tx) -> None:
        now = int(time.time())
        tx.conn.execute(sql_delete(RateLimit).where(RateLimit.bucket.startswith(ONCE_PREFIX), RateLimit.window_start < now))
        if not claim_once(tx.conn, bucket, ticket.expires):
            raise TicketError("used")

    return guard


async def redeem(db: Database, secret_key: bytes, purpose: str, text: str) -> Ticket:
    """Check a ticket and mark it used at once (for steps that write nothing themselves)."""
    ticket = read(secret_key, purpose, text)
    await db.transact(spend(secret_key, ticket))
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
    return threads.Limits.of(settings)


async def _current_team_pk(db: Database, team_id: str) -> bytes:
    async with db.read() as session:
        keys = await team_keys(session, team_id)
    if keys.current is None:
        raise NotFound("unknown_team", f"team {team_id} takes no messages now")
    return keys.current.pk


async def _sealed_retrying(db: Database, team_id: str, citizen_pk: bytes, text: str, send, z_sk: bytes | None = None,  # type: ignore[no-untyped-def]
                           token: bytes | None = None) -> None:
    """Seal {"text"} and send; once more if the key was just rotated or someone wrote meanwhile.

    With `z_sk` the server seals envelope version 2 as the citizen (issue 11): a new thread
    (`token` None) at seq 1 to the team's current key, a reply at the next seq to the key the
    thread is pinned to. Without it (or in a thread from before version 2) version 1.
    """
    for attempt in (1, 2):
        place = await _v2_place(db, token, z_sk) if z_sk is not None and token is not None else None
        if z_sk is not None and (token is None or place is not None):
            seq, pin = place if place is not None else (1, None)
            team_pk = pin if pin is not None else await _current_team_pk(db, team_id)
            envelope = seal_v2({"text": text}, Binding("citizen", seq, citizen_pk, team_pk), z_sk)
        else:
            envelope = seal_envelope({"text": text}, [await _current_team_pk(db, team_id), citizen_pk])
        try:
            await send(envelope)
            return
        except Conflict as exc:
            if exc.code not in (CryptoError.STALE_TEAM_KEY, authentic.STALE_SEQ) or attempt == 2:
                raise


async def _v2_place(db: Database, token: bytes, z_sk: bytes) -> tuple[int, bytes | None] | None:
    """(next seq, pinned team pk) of a version 2 thread, None for a thread from before version 2."""
    opened = await threads.open_thread(db, token)
    rows = [(seq, sender, json.loads(envelope)) for seq, sender, _at, envelope in opened.messages]
    if not rows or version_of(rows[0][2]) != 2:
        return None
    return max(seq for seq, _s, _e in rows) + 1, citizen_pin(rows, z_sk)


async def write(
    db: Database, settings: Settings, gate: KdfGate, team_id: str, text: str, guard: threads.Guard | None = None
) -> str:
    """Create a server-sealed thread; the new pickup code (16 digits), which the caller shows once.
    `guard` (the form ticket) is spent in the same transaction, so it is used only if the write succeeds."""
    async with db.read() as session:
        salt = await get_code_salt(session)
    code = generate_code()
    # Argon2id off the event loop and bounded: the server keeps answering other people meanwhile.
    keys = await gate.run(derive_citizen, code, salt, settings.kdf_ops, settings.kdf_mem)

    async def send(envelope: dict) -> None:
        limits = _limits(settings)
        await threads.create_thread(
            db, limits, team_id=team_id, citizen_pk=keys.pk, access_token=keys.access_token,
            parsed=threads.parse(envelope, limits), sealed_by="server", guard=guard,
        )

    await _sealed_retrying(db, team_id, keys.pk, text, send, z_sk=keys.sk)
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
    # Authentic at its place (envelope v2, issue 11); an unverified message is never shown as its sender's.
    verified: bool = False


@dataclass(frozen=True, repr=False)
class Conversation:
    thread: threads.Opened
    messages: list[Shown]


async def conversation(db: Database, keys: Keys) -> Conversation:
    """Open the thread and every envelope addressed to `kid(Z.pk)`; NotFound for an unknown code."""
    opened = await threads.open_thread(db, keys.access_token)
    rows = []
    for seq, sender, _at, envelope in opened.messages:
        try:
            rows.append((seq, sender, json.loads(envelope)))
        except ValueError:
            rows.append((seq, sender, None))  # one clear placeholder on the page, never a crash
    at = {seq: threads.moment(when) for seq, _sender, when, _envelope in opened.messages}
    # The citizen reader's rule (crypto/README.md "Envelope v2"): only what verifies is its sender's.
    shown = [Shown(r.seq, r.sender, at[r.seq], r.text, r.verified) for r in read_as_citizen(rows, keys.sk)]
    return Conversation(opened, shown)


async def reply(db: Database, settings: Settings, keys: Keys, text: str, guard: threads.Guard | None = None) -> None:
    """A citizen reply sealed by the server; the thread is flagged `sealed_by = "server"` in the same
    transaction, and `guard` (the form ticket) is spent there too."""
    async with db.read() as session:
        thread = await threads.find_thread(session, keys.access_token)
    token = keys.access_token
    flag = threads.mark_sealed_by_server_unit(lookup_for(token))

    def guarded(tx: Tx) -> None:
        if guard is not None:
            guard(tx)
        flag(tx)

    async def send(envelope: dict) -> None:
        limits = _limits(settings)
        await threads.citizen_reply(db, limits, token, threads.parse(envelope, limits), guard=guarded)

    await _sealed_retrying(db, thread.team_id, thread.citizen_pk, text, send, z_sk=keys.sk, token=token)


async def delete(db: Database, keys: Keys, guard: threads.Guard | None = None) -> None:
    await threads.delete_thread(db, keys.access_token, guard)

