"""What the server checks of a version 2 envelope on every write path (crypto/README.md
"What the server checks"). It holds no key, so it checks only what the envelope
declares in its clear header against the row it is about to store: the role of
the write path, the thread (`kid(citizen_pk)`), the seq it assigns, and the
team key the thread is pinned to (the `team` of its first message). Readers
verify everything again themselves; these checks keep honest clients
consistent and give them clear answers (400 `bad_envelope`, 409 `stale_seq`,
409 `stale_team_key`).

Sync helpers take a `Connection` (the group-commit units); `check_async` is the
same for an async ORM session (the staff side).
"""

import json
from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import CryptoError, kid, unb64
from crypto.envelope import Envelope
from crypto.envelope2 import VERSION, header_of
from gateway.db import run
from gateway.errors import BadRequest, Conflict
from gateway.models import Message

STALE_SEQ = "stale_seq"


def _bad(message: str) -> BadRequest:
    return BadRequest(CryptoError.BAD_ENVELOPE, message)


def first_envelope_query(thread_id: str):  # type: ignore[no-untyped-def]
    return select(Message.envelope).where(Message.thread_id == thread_id, Message.seq == 1)


# Built once for the hot write path (issue 9).
FIRST_ENVELOPE = select(Message.envelope).where(Message.thread_id == bindparam("thread_id"), Message.seq == 1)


def first_envelope(conn: Connection, thread_id: str) -> str | None:
    """The stored JSON of the thread's first message (its version and pin), or None."""
    rows = run(conn, FIRST_ENVELOPE, {"thread_id": thread_id})
    return rows[0][0] if rows else None


def _version_and_pin(first: str) -> tuple[object, object]:
    try:
        data = json.loads(first)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    return data.get("v"), data.get("team")


def check_write(
    parsed: Envelope,
    *,
    role: str,
    citizen_pk: bytes,
    first: str | None,
    current_kid: str | None = None,
    retired_kids: Iterable[str] = (),
) -> bool:
    """Check a write against its thread; True when it is version 2 (then the v1 recipient rule does not apply).

    `first` is the stored first message of the thread, None for a new thread
    (whose envelope then must be sealed to the team's current key, `current_kid`).
    """
    version = parsed.version
    if first is not None:
        first_version, pin = _version_and_pin(first)
        if first_version != version:
            raise _bad(f"this conversation takes envelope version {first_version} only")
    if version != VERSION:
        return False
    header = parsed.header if parsed.header is not None else header_of(parsed.data)
    if header.role != role:
        raise _bad(f"this envelope declares from={header.role}; here it must be {role}")
    if header.thread_kid != kid(citizen_pk):
        raise _bad("this envelope belongs to another conversation (its thread is not kid(citizen_pk))")
    if first is None:
        if header.team_kid != current_kid:
            if header.team_kid in set(retired_kids):
                raise Conflict(CryptoError.STALE_TEAM_KEY, "the team key was rotated; seal to the new key")
            raise _bad("a new conversation is sealed to the team's current key")
        if header.seq != 1:
            raise Conflict(STALE_SEQ, "the first message of a conversation has seq 1")
    elif header.team_kid != kid_of_pin(pin):
        raise _bad("this conversation is pinned to another team key (the one of its first message)")
    return True


def kid_of_pin(pin: object) -> str | None:
    try:
        return kid(unb64(pin, length=32))
    except CryptoError:
        return None


def check_seq(parsed: Envelope, seq: int) -> None:
    """The seq the server assigned must be the one the writer bound (409 `stale_seq`: read again, re-seal)."""
    if parsed.version == VERSION and parsed.data["seq"] != seq:
        raise Conflict(STALE_SEQ, f"someone wrote meanwhile: this message would be seq {seq}; read the conversation again and re-seal")


async def check_async(session: AsyncSession, thread_id: str, citizen_pk: bytes, role: str, parsed: Envelope) -> bool:
    """`check_write` for a later message or note of an existing thread, on an async session."""
    first = await session.scalar(first_envelope_query(thread_id))
    return check_write(parsed, role=role, citizen_pk=citizen_pk, first=first)
