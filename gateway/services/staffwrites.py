"""The consultant's hot writes, replies and internal notes, as group-commit units (issue 9).

The same rules as before (INTERFACES.md "Staff"; CRYPTO.md "Envelope"): a
thread of another team is 404; a reply goes to the citizen and the team key,
a note to the team key only, both bound to the thread's pinned key when they
are envelope version 2 (issue 11); a reply turns a new or open thread to
`waiting` and gives a thread nobody holds to the one who answers (audited);
a note does not renew the thread's expiry. Both announce `thread_changed`.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update

from crypto import CryptoError, check_recipients
from crypto.envelope import Envelope
from gateway.db import Database, minute, run, utcnow
from gateway.errors import NotFound, from_crypto
from gateway.models import AuditEntry, Membership, Note, Thread
from gateway.services import authentic, duty
from gateway.services.teams import key_view
from gateway.services.threads import Appended, Limits, ThreadRow, _check_recipients, _insert_kids, append
from gateway.writer import Tx

OWN_THREAD = (
    select(Thread.id, Thread.team_id, Thread.citizen_pk, Thread.status, Thread.assigned_to, Thread.last_seq,
           Thread.total_bytes)
    .join(Membership, (Membership.team_id == Thread.team_id) & (Membership.username == bindparam("username")))
    .where(Thread.id == bindparam("thread_id"))
)
INSERT_NOTE = insert(Note)
INSERT_AUDIT = insert(AuditEntry)


@dataclass(frozen=True)
class NoteAdded:
    thread_id: str
    at: dt.datetime


def _own(tx: Tx, username: str, thread_id: str) -> ThreadRow:
    rows = run(tx.conn, OWN_THREAD, {"username": username, "thread_id": thread_id})
    if not rows:
        raise NotFound("unknown_thread", "no such thread in your teams")
    return ThreadRow(*rows[0])


def reply_unit(username: str, thread_id: str, parsed: Envelope, limits: Limits) -> Callable[[Tx], Appended]:
    def unit(tx: Tx) -> Appended:
        now = minute(utcnow())
        thread = _own(tx, username, thread_id)
        first = authentic.first_envelope(tx.conn, thread.id)
        if not authentic.check_write(parsed, role="consultant", citizen_pk=thread.citizen_pk, first=first):
            _check_recipients(key_view(tx, thread.team_id), parsed, thread.citizen_pk)
        seq = append(tx, thread, "consultant", parsed, limits, now)
        status = "waiting" if thread.status in ("new", "open") else thread.status
        assigned = thread.assigned_to or username
        if (status, assigned) != (thread.status, thread.assigned_to):
            tx.conn.execute(update(Thread).where(Thread.id == thread.id).values(status=status, assigned_to=assigned))
        if thread.assigned_to is None:
            run(tx.conn, INSERT_AUDIT, {"at": now, "actor": username, "action": "thread.assign",
                                        "detail": f"thread={thread.id} to={username}"})
        duty.announce_sync(tx.conn, thread.team_id, thread.id, "thread_changed")
        return Appended(thread.id, seq)

    return unit


def note_unit(username: str, thread_id: str, parsed: Envelope) -> Callable[[Tx], NoteAdded]:
    def unit(tx: Tx) -> NoteAdded:
        now = minute(utcnow())
        thread = _own(tx, username, thread_id)
        keys = key_view(tx, thread.team_id)
        if keys.current_kid is None:
            raise NotFound("unknown_team", "the team has no current key")
        first = authentic.first_envelope(tx.conn, thread.id)
        if not authentic.check_write(parsed, role="note", citizen_pk=thread.citizen_pk, first=first):
            try:
                check_recipients(parsed, {keys.current_kid}, set(keys.retired_kids))
            except CryptoError as exc:
                raise from_crypto(exc) from None
        run(tx.conn, INSERT_NOTE, {"thread_id": thread.id, "author": username, "at": now, "envelope": parsed.to_json()})
        _insert_kids(tx.conn, thread.id, set(parsed.kids))
        duty.announce_sync(tx.conn, thread.team_id, thread.id, "thread_changed")
        return NoteAdded(thread.id, now)

    return unit


async def reply(db: Database, limits: Limits, username: str, thread_id: str, parsed: Envelope) -> Appended:
    appended = await db.transact(reply_unit(username, thread_id, parsed, limits))
    db.written()
    return appended


async def add_note(db: Database, username: str, thread_id: str, parsed: Envelope) -> NoteAdded:
    added = await db.transact(note_unit(username, thread_id, parsed))
    db.written()
    return added
