"""The audit log: time, actor, action; never content, never anything about a citizen.

Entries about a thread start `thread=<id>` (gateway.services.inbox). When the
thread is deleted or purged, `forget_threads` rewrites each of them to
`thread=(deleted)` or `thread=(purged)`: the fact that a consultant acted
stays, but not which thread, nor what its status, risk or assignee was.
"""

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Update, exists, false, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import minute, utcnow
from gateway.models import AuditEntry, Thread

THREAD_MARK = "thread="
# Thread ids are 12 random bytes in b64 (gateway.services.threads): always 16 characters.
THREAD_ID_CHARS = 16


def record(session: AsyncSession, actor: str, action: str, detail: str = "") -> None:
    session.add(AuditEntry(at=minute(utcnow()), actor=actor, action=action, detail=detail))


def forget_threads(ids: Sequence[str], why: str = "deleted", since: dt.datetime | None = None) -> Update:
    """One UPDATE that scrubs every entry naming one of `ids` (use it in the deleting transaction).

    Matches `thread=<id>` at the start of the detail, followed by a space or
    nothing, so an id that is a prefix of another never matches the longer one.
    `since` (the oldest thread's `created`) limits the search to entries
    written after it, through the index on `at`.
    """
    by_length: dict[int, list[str]] = {}
    for thread_id in ids:
        by_length.setdefault(len(thread_id), []).append(THREAD_MARK + thread_id)
    detail = AuditEntry.detail
    clauses = [
        func.substr(detail, 1, len(THREAD_MARK) + length).in_(marks)
        & ((func.length(detail) == len(THREAD_MARK) + length)
           | (func.substr(detail, len(THREAD_MARK) + length + 1, 1) == " "))
        for length, marks in by_length.items()
    ]
    return (
        update(AuditEntry)
        .where(detail.like(f"{THREAD_MARK}%"), or_(false(), *clauses),
               *([AuditEntry.at >= since] if since is not None else []))
        .values(detail=f"{THREAD_MARK}({why})")
        .execution_options(synchronize_session=False)
    )


def forget_missing_threads(first_id: int, end_id: int, why: str = "purged") -> Update:
    """Scrub the entries with ids in [first_id, end_id) that name a thread no longer stored.

    The purge's sweep: one pass over the log in id ranges, each entry's
    thread looked up by primary key (no scan of the log per purged thread).
    """
    detail = AuditEntry.detail
    named = func.substr(detail, len(THREAD_MARK) + 1, THREAD_ID_CHARS)
    return (
        update(AuditEntry)
        .where(
            AuditEntry.id >= first_id,
            AuditEntry.id < end_id,
            detail.like(f"{THREAD_MARK}%"),
            detail.not_like(f"{THREAD_MARK}(%"),
            ~exists().where(Thread.id == named),
        )
        .values(detail=f"{THREAD_MARK}({why})")
        .execution_options(synchronize_session=False)
    )
