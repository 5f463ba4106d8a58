"""Handover (issue 13): pass a thread to a teammate with an internal note in one step, and
"end my shift": every open thread assigned to me goes to whoever else is on duty on
its team, or back to the team (unassigned) when nobody is. Both are audited and
announced to the team's open inboxes (content-free `thread_changed`)."""

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import CryptoError, check_recipients, parse_envelope
from gateway.db import Database, minute, utcnow
from gateway.errors import BadRequest, NotFound, from_crypto
from gateway.models import Duty, EnvelopeKid, Note, Thread
from gateway.services import audit, authentic, duty, threads
from gateway.services.consultants import teams_of
from gateway.services.inbox import own_thread, thread_json
from gateway.services.keys import active_members
from gateway.services.teams import team_keys


async def _add_note(session: AsyncSession, thread: Thread, author: str, envelope: object, limits: threads.Limits) -> None:
    """The handover note: sealed to the team's current key only, like every internal note."""
    try:
        parsed = parse_envelope(envelope, max_bytes=limits.max_envelope_bytes)
        keys = await team_keys(session, thread.team_id)
        if keys.current is None:
            raise NotFound("unknown_team", "the team has no current key")
        # Version 2 (issue 11): a note is bound to its thread and the thread's pinned team key.
        if not await authentic.check_async(session, thread.id, thread.citizen_pk, "note", parsed):
            check_recipients(parsed, {keys.current.kid}, set(keys.retired_kids))
    except CryptoError as exc:
        raise from_crypto(exc) from None
    session.add(Note(thread_id=thread.id, author=author, at=minute(utcnow()), envelope=parsed.to_json()))
    known = set(await session.scalars(select(EnvelopeKid.kid).where(EnvelopeKid.thread_id == thread.id)))
    for team_kid in set(parsed.kids) - known:
        session.add(EnvelopeKid(thread_id=thread.id, kid=team_kid))


async def hand_over(
    db: Database, limits: threads.Limits, username: str, thread_id: str, to: str | None, note: object | None
) -> dict:
    """Assign the thread to `to` (an active member of its team, or null for the team) and,
    in the same transaction, add the internal note if one is sent."""
    async with db.write() as session:
        thread = await own_thread(session, username, thread_id, lock=True)
        if to is not None and to not in {m.username for m in await active_members(session, thread.team_id)}:
            raise BadRequest("bad_assignee", "hand over to an active member of the thread's team, or null")
        if note is not None:
            await _add_note(session, thread, username, note, limits)
        previous = thread.assigned_to
        thread.assigned_to = to
        audit.record(session, username, "thread.handover", f"thread={thread.id} from={previous or '-'} to={to or '-'} note={'yes' if note is not None else 'no'}")
        await duty.announce(session, thread, "thread_changed")
        return thread_json(thread)


async def _open_load(session: AsyncSession, usernames: list[str]) -> dict[str, int]:
    """Open threads per consultant, for the few on duty (bounded by who is on duty, not by threads)."""
    rows = await session.execute(
        select(Thread.assigned_to, func.count())
        .where(Thread.assigned_to.in_(usernames), Thread.status != "closed")
        .group_by(Thread.assigned_to)
    )
    return {name: int(count) for name, count in rows.all() if name is not None}


async def end_shift(db: Database, username: str) -> dict:
    """Go off duty on every team and hand each open thread assigned to me to the least loaded
    teammate still on duty there, or back to the team. Returns `{handed_over, to_team, off_duty}`."""
    async with db.write() as session:
        handed: dict[str, int] = {}
        to_team = 0
        teams = await teams_of(session, username)
        for team_id in teams:
            current = await session.get(Duty, (team_id, username))
            if current is not None:
                await session.delete(current)
                audit.record(session, username, "duty.off", f"team={team_id}")
        await session.flush()
        for team_id in teams:
            others = [name for name in await duty.on_duty(session, team_id) if name != username]
            load = await _open_load(session, others) if others else {}
            mine = list(await session.scalars(
                select(Thread).where(Thread.team_id == team_id, Thread.assigned_to == username, Thread.status != "closed")
                .order_by(Thread.id).with_for_update()
            ))
            for thread in mine:
                target = min(others, key=lambda name: (load.get(name, 0), name)) if others else None
                if target is not None:
                    load[target] = load.get(target, 0) + 1
                    handed[target] = handed.get(target, 0) + 1
                else:
                    to_team += 1
                await session.execute(update(Thread).where(Thread.id == thread.id).values(assigned_to=target))
                audit.record(session, username, "thread.handover", f"thread={thread.id} from={username} to={target or '-'} shift_end=yes")
                await duty.announce(session, thread, "thread_changed")
        audit.record(session, username, "shift.end", f"handed_over={sum(handed.values())} to_team={to_team}")
    return {"handed_over": handed, "to_team": to_team, "off_duty": True}
