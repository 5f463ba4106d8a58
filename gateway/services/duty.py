"""Duty routing: who gets a new thread, and who hears about it (INTERFACES.md "Notifications").

Everything goes through the database (events and the e-mail outbox), so any
gateway process can take the citizen's request and any other can deliver.

Routing costs the same with 10 open threads or 100,000 (issue 9): the
on-duty roster is read once per write batch, and the on-duty members' open
threads are counted at most every few seconds (`assignee`), not on each
arrival. An assignee who is on duty keeps their thread. Times stored here are minutes (PRODUCT.md promise 3).
"""

from sqlalchemy import Connection, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import minute, run, utcnow
from gateway.models import Consultant, Duty, Event, Membership, Outbox, Thread
from gateway.writer import Tx

INSERT_EVENT = insert(Event)
LOAD_SECONDS = 5.0
INSERT_OUTBOX = insert(Outbox)


ON_DUTY = (
    select(Duty.username)
    .join(Consultant, Consultant.username == Duty.username)
    .join(Membership, (Membership.username == Duty.username) & (Membership.team_id == Duty.team_id))
    .where(Duty.team_id == bindparam("team_id"), Consultant.status == "active")
    .order_by(Duty.username)
)
MEMBERS = (
    select(Membership.username)
    .join(Consultant, Consultant.username == Membership.username)
    .where(Membership.team_id == bindparam("team_id"), Consultant.status == "active")
    .order_by(Membership.username)
)


async def on_duty(session: AsyncSession, team_id: str) -> list[str]:
    return list(await session.scalars(ON_DUTY, {"team_id": team_id}))


def _names(tx: Tx, query, team_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Usernames, read once per write batch (issue 9)."""
    return tx.remember((id(query), team_id), lambda: [row[0] for row in run(tx.conn, query, {"team_id": team_id})])


def _roster(tx: Tx, team_id: str) -> list[str]:
    return _names(tx, ON_DUTY, team_id)


def _members(tx: Tx, team_id: str) -> list[str]:
    return _names(tx, MEMBERS, team_id)


def _loads(conn: Connection, team_id: str, roster: list[str]) -> dict[str, int]:
    rows = conn.execute(
        select(Thread.assigned_to, func.count())
        .where(Thread.team_id == team_id, Thread.assigned_to.in_(roster), Thread.status != "closed")
        .group_by(Thread.assigned_to)
    )
    return {str(name): int(n) for name, n in rows}


def assignee(tx: Tx, team_id: str, current: str | None) -> str | None:
    """Who holds a thread once a citizen message arrives: the assignee while on duty, else the
    on-duty member with the fewest open threads; with nobody on duty the assignment is left alone.

    The open threads are counted at most every `LOAD_SECONDS` per roster (a change of roster
    counts at once) and kept up to date in between, so routing costs the same with 10 open threads
    or 100,000 (issue 9); several processes each keep their own count, so balance is near, not exact.
    """
    roster = _roster(tx, team_id)
    if not roster or current in roster:
        return current
    loads = tx.lasting(("duty-load", team_id, tuple(roster)), LOAD_SECONDS, lambda: _loads(tx.conn, team_id, roster))
    chosen = min(roster, key=lambda name: (loads.get(name, 0), name))
    loads[chosen] = loads.get(chosen, 0) + 1
    return chosen


def notify(tx: Tx, team_id: str, thread_id: str, assigned: str | None, kind: str, now=None) -> None:  # type: ignore[no-untyped-def]
    """A content-free live event for the team's open inboxes and an e-mail for who must hear it:
    the assignee when someone is on duty, else every active member of the team."""
    at = minute(now or utcnow())
    run(tx.conn, INSERT_EVENT, {"team_id": team_id, "kind": kind, "thread_id": thread_id, "created": at})
    recipients = [assigned] if _roster(tx, team_id) and assigned else _members(tx, team_id)
    if recipients:
        run(tx.conn, INSERT_OUTBOX, [{"username": name, "due": at, "attempts": 0} for name in recipients])


def announce_sync(conn: Connection, team_id: str, thread_id: str, kind: str) -> None:
    conn.execute(insert(Event).values(team_id=team_id, kind=kind, thread_id=thread_id, created=minute(utcnow())))


async def announce(session: AsyncSession, thread: Thread, kind: str) -> None:
    """A content-free live event for the team's open inboxes (staff-side changes)."""
    session.add(Event(team_id=thread.team_id, kind=kind, thread_id=thread.id, created=minute(utcnow())))
