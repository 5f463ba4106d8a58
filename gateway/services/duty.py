"""Duty routing: who gets a new thread, and who hears about it (INTERFACES.md "Notifications").

Everything goes through the database (events and the e-mail outbox), so any
gateway process can take the citizen's request and any other can deliver.
"""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import utcnow
from gateway.models import Consultant, Duty, Event, Membership, Outbox, Thread


async def on_duty(session: AsyncSession, team_id: str) -> list[str]:
    rows = await session.scalars(
        select(Duty.username)
        .join(Consultant, Consultant.username == Duty.username)
        .join(Membership, (Membership.username == Duty.username) & (Membership.team_id == Duty.team_id))
        .where(Duty.team_id == team_id, Consultant.status == "active")
        .order_by(Duty.username)
    )
    return list(rows)


async def _least_loaded(session: AsyncSession, usernames: list[str]) -> str:
    counts = dict(
        (
            await session.execute(
                select(Thread.assigned_to, func.count())
                .where(Thread.assigned_to.in_(usernames), Thread.status != "closed")
                .group_by(Thread.assigned_to)
            )
        ).all()
    )
    return min(usernames, key=lambda name: (counts.get(name, 0), name))


async def route(session: AsyncSession, thread: Thread, kind: str) -> None:
    """Assign `thread` on arrival of a citizen message and queue the announcements.

    The assignee stays when they are on duty; otherwise the on-duty member with
    the fewest open threads takes it. With nobody on duty the assignment is
    left alone and every active member of the team is notified.
    """
    duty = await on_duty(session, thread.team_id)
    if duty and thread.assigned_to not in duty:
        thread.assigned_to = await _least_loaded(session, duty)
    recipients = [thread.assigned_to] if duty and thread.assigned_to else await _team_members(session, thread.team_id)
    await announce(session, thread, kind)
    now = utcnow()
    for username in recipients:
        if username:
            session.add(Outbox(username=username, due=now, attempts=0))


async def announce(session: AsyncSession, thread: Thread, kind: str) -> None:
    """A content-free live event for the team's open inboxes."""
    session.add(Event(team_id=thread.team_id, kind=kind, thread_id=thread.id, created=utcnow()))


async def _team_members(session: AsyncSession, team_id: str) -> list[str]:
    rows = await session.scalars(
        select(Membership.username)
        .join(Consultant, Consultant.username == Membership.username)
        .where(Membership.team_id == team_id, Consultant.status == "active")
    )
    return list(rows)
