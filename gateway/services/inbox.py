"""The staff inbox: a consultant sees, answers and triages the threads of their own teams.

A thread of another team is 404, the same as a thread that does not exist.
Replies are sealed to the citizen and the team's current key, notes to the
team's current key only (CRYPTO.md "Envelope"); the server checks shape and
recipients, never content. Staff-side changes are announced to the team's
open inboxes as `thread_changed` (content-free) and triage is audited.
"""

import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import b64, kid
from gateway.db import Database, rfc3339_minute
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.models import Duty, Grant, Membership, Message, Note, Team, Thread
from gateway.services import audit, duty, listing, staffwrites, threads
from gateway.services.consultants import teams_of
from gateway.services.keys import active_members
from gateway.services.teams import team_keys

STATUSES = ("new", "open", "waiting", "closed")
RISKS = ("unknown", "low", "medium", "high", "acute")


def thread_json(thread: Thread) -> dict:
    return {
        "id": thread.id,
        "team": thread.team_id,
        "status": thread.status,
        "risk": thread.risk,
        "assigned_to": thread.assigned_to,
        "sealed_by": thread.sealed_by,
        "created": rfc3339_minute(thread.created),
        "last_activity": rfc3339_minute(thread.last_activity),
        "expires": thread.expires.isoformat(),
    }


def note_json(note: Note) -> dict:
    return {"at": rfc3339_minute(note.at), "author": note.author, "envelope": json.loads(note.envelope)}


async def list_threads(db: Database, username: str, page: listing.Page | None = None) -> dict:
    """One page of the caller's teams' threads in the inbox order, with every view's count
    (`gateway.services.listing`): the same order for every member, on duty or not."""
    return await listing.list_page(db, username, page or listing.Page())


async def _own_thread(session: AsyncSession, username: str, thread_id: str, *, lock: bool = False) -> Thread:
    query = (
        select(Thread)
        .join(Membership, (Membership.team_id == Thread.team_id) & (Membership.username == username))
        .where(Thread.id == thread_id)
    )
    thread = await session.scalar(query.with_for_update(of=Thread) if lock else query)
    if thread is None:
        raise NotFound("unknown_thread", "no such thread in your teams")
    return thread


own_thread = _own_thread


async def get_thread(db: Database, username: str, thread_id: str) -> dict:
    async with db.read() as session:
        thread = await _own_thread(session, username, thread_id)
        messages = await session.scalars(select(Message).where(Message.thread_id == thread.id).order_by(Message.seq))
        notes = await session.scalars(select(Note).where(Note.thread_id == thread.id).order_by(Note.at, Note.id))
        return {
            "thread": {**thread_json(thread), "citizen_pk": b64(thread.citizen_pk)},
            "messages": [threads.message_json(m) for m in messages],
            "notes": [note_json(n) for n in notes],
        }


async def reply(db: Database, limits: threads.Limits, username: str, thread_id: str, envelope: object) -> threads.Appended:
    """A consultant reply (a group-commit unit, `gateway.services.staffwrites`). A new or open thread
    becomes `waiting` (for the citizen); a thread nobody holds is assigned to the one who answers;
    a closed one stays closed."""
    return await staffwrites.reply(db, limits, username, thread_id, threads.parse(envelope, limits))


async def add_note(db: Database, limits: threads.Limits, username: str, thread_id: str, envelope: object) -> staffwrites.NoteAdded:
    """An internal note, sealed to the team's current key only; it does not renew the thread's expiry."""
    return await staffwrites.add_note(db, username, thread_id, threads.parse(envelope, limits))


async def update_thread(db: Database, username: str, thread_id: str, changes: dict) -> dict:
    """Set status, risk and/or assignee (an active member of the thread's team, or null)."""
    if not changes:
        raise BadRequest("nothing_to_change", "send at least one of status, risk, assigned_to")
    if "status" in changes and changes["status"] not in STATUSES:
        raise BadRequest("bad_status", f"status is one of {', '.join(STATUSES)}")
    if "risk" in changes and changes["risk"] not in RISKS:
        raise BadRequest("bad_risk", f"risk is one of {', '.join(RISKS)}")
    async with db.write() as session:
        thread = await _own_thread(session, username, thread_id, lock=True)
        if "assigned_to" in changes and changes["assigned_to"] != thread.assigned_to:
            target = changes["assigned_to"]
            if target is not None and target not in {m.username for m in await active_members(session, thread.team_id)}:
                raise BadRequest("bad_assignee", "assign to an active member of the thread's team, or null")
            thread.assigned_to = target
            audit.record(session, username, "thread.assign", f"thread={thread.id} to={target or '-'}")
        for field in ("status", "risk"):
            if field in changes and changes[field] != getattr(thread, field):
                setattr(thread, field, changes[field])
                audit.record(session, username, f"thread.{field}", f"thread={thread.id} {field}={changes[field]}")
        await duty.announce(session, thread, "thread_changed")
        return thread_json(thread)


async def _require_member(session: AsyncSession, username: str, team_id: str) -> None:
    if team_id not in await teams_of(session, username):
        raise Forbidden("not_a_member", "you are not a member of this team")


async def set_duty(db: Database, username: str, team_id: str, on: bool) -> list[str]:
    """Go on or off duty for one of the caller's teams; returns who is on duty now."""
    async with db.write() as session:
        await _require_member(session, username, team_id)
        current = await session.get(Duty, (team_id, username))
        if on and current is None:
            session.add(Duty(team_id=team_id, username=username))
            audit.record(session, username, "duty.on", f"team={team_id}")
        elif not on and current is not None:
            await session.delete(current)
            audit.record(session, username, "duty.off", f"team={team_id}")
        await session.flush()
        return await duty.on_duty(session, team_id)


async def team_overview(db: Database, username: str) -> list[dict]:
    """The caller's teams: current key, who is on duty, members with their key fingerprint (kid)."""
    async with db.read() as session:
        result = []
        for team_id in await teams_of(session, username):
            team = await session.get(Team, team_id)
            keys = await team_keys(session, team_id)
            on_duty = await duty.on_duty(session, team_id)
            members = await active_members(session, team_id)
            holders = set(
                await session.scalars(select(Grant.username).where(Grant.kid == keys.current.kid))
            ) if keys.current else set()
            result.append(
                {
                    "id": team_id,
                    "name": team.name if team else team_id,
                    "current_kid": keys.current.kid if keys.current else None,
                    "on_duty": on_duty,
                    "members": [
                        {"username": m.username, "kid": kid(m.pk) if m.pk else None, "on_duty": m.username in on_duty,
                         # Who can share the current key with a new member (issue 13).
                         "holds_key": m.username in holders}
                        for m in members
                    ],
                }
            )
        return result
