"""Per-consultant state of the inbox (issue 13): how far each thread is read, and notification choices.

Both are staff metadata about a consultant, never about a citizen: a read
marker is a seq number, the choices are two booleans. They live on the
server, with the consultant, so nothing is kept in the browser's storage.
"""

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from gateway.db import Database
from gateway.errors import BadRequest
from gateway.models import ReadMarker, StaffPrefs
from gateway.services.inbox import own_thread


async def mark_read(db: Database, username: str, thread_id: str, seq: int) -> int:
    """Read up to `seq` (capped at the thread's last message); a marker never moves back. Returns the marker."""
    if seq < 0:
        raise BadRequest("bad_seq", "seq is a message number, 0 or more")
    try:
        return await _mark(db, username, thread_id, seq)
    except IntegrityError:
        # Two tabs of one consultant made the first marker at once (PostgreSQL): the second pass updates it.
        return await _mark(db, username, thread_id, seq)


async def _mark(db: Database, username: str, thread_id: str, seq: int) -> int:
    async with db.write() as session:
        thread = await own_thread(session, username, thread_id)
        seq = min(seq, thread.last_seq)
        marker = await session.get(ReadMarker, (username, thread.id))
        if marker is None:
            session.add(ReadMarker(username=username, thread_id=thread.id, seq=seq))
            return seq
        if seq > marker.seq:
            await session.execute(
                update(ReadMarker)
                .where(ReadMarker.username == username, ReadMarker.thread_id == thread.id, ReadMarker.seq < seq)
                .values(seq=seq)
            )
            return seq
        return marker.seq


def prefs_json(prefs: StaffPrefs | None) -> dict:
    return {"desktop": bool(prefs and prefs.desktop), "sound": bool(prefs and prefs.sound)}


async def get_prefs(db: Database, username: str) -> dict:
    async with db.read() as session:
        return prefs_json(await session.get(StaffPrefs, username))


async def set_prefs(db: Database, username: str, changes: dict[str, bool]) -> dict:
    if not changes:
        raise BadRequest("nothing_to_change", "send desktop and/or sound")
    try:
        return await _set_prefs(db, username, changes)
    except IntegrityError:  # two first choices at once (PostgreSQL): the second pass updates the row
        return await _set_prefs(db, username, changes)


async def _set_prefs(db: Database, username: str, changes: dict[str, bool]) -> dict:
    async with db.write() as session:
        prefs = await session.get(StaffPrefs, username)
        if prefs is None:
            prefs = StaffPrefs(username=username, desktop=False, sound=False)
            session.add(prefs)
        for name, value in changes.items():
            setattr(prefs, name, value)
        return prefs_json(prefs)
