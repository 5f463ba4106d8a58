"""The inbox list (issue 13): one order for the whole team, views, counts, keyset pages.

The order is the same for every member, on duty or not ("mine" is a view):

1. threads at risk `acute`, then `high`;
2. threads that need a reply (the citizen wrote last and the thread is not
   closed), the longest wait first (new unassigned threads are among them);
3. the rest, most recent activity first.

Inside each danger tier the same rule applies (needing a reply first, longest
wait first; then most recent). Triggers (migration 0004) keep the order as two
stored numbers on each thread: `inbox_rank` 0-5 and `inbox_key` (minutes of
`waiting_since` for a thread needing a reply, minus the minutes of
`last_activity` otherwise), so a page is read in the order of the index
`(team_id, inbox_rank, inbox_key, id)` without sorting the team. A page ends
with a cursor `next` = the last row's (rank, key, id): keyset pagination, so
a page costs the same on the first page and the hundredth.

Everything here is SQLAlchemy Core, one query for the page and one for the
counts: the inbox is read on every event by every open inbox.
"""

import base64
import binascii
import json
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Row, and_, exists, func, literal, select, tuple_
from sqlalchemy.engine import Connection

from crypto import b64
from gateway.db import Database, rfc3339_minute
from gateway.errors import BadRequest
from gateway.models import Membership, Message, ReadMarker, Thread

VIEWS = ("all", "mine", "unassigned", "needs_reply", "urgent", "closed")
MAX_PREVIEWS = 50
DEFAULT_LIMIT = 100
MAX_LIMIT = 500

T = Thread.__table__.c
NEEDS_REPLY = and_(T.last_sender == "citizen", T.status != "closed")
URGENT = T.risk.in_(("acute", "high"))
OPEN = T.status != "closed"


@dataclass(frozen=True)
class Cursor:
    rank: int
    key: int
    id: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"{self.rank}|{self.key}|{self.id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            if len(text) > 128:
                raise ValueError
            rank, key, thread_id = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii").split("|")
            if not (rank.isdigit() and int(rank) <= 5 and len(key) <= 12 and 1 <= len(thread_id) <= 32):
                raise ValueError
            return cls(int(rank), int(key), thread_id)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise BadRequest("bad_cursor", "after is the `next` value of a previous page") from None


@dataclass(frozen=True)
class Page:
    view: str = "all"
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None


def parse_page(query: dict[str, str]) -> Page:
    """`?view=&limit=&after=` (all optional), or 400 with the field's name."""
    view = query.get("view", "all")
    if view not in VIEWS:
        raise BadRequest("bad_view", f"view is one of {', '.join(VIEWS)}")
    raw_limit = query.get("limit", str(DEFAULT_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT):
        raise BadRequest("bad_limit", f"limit is a whole number from 1 to {MAX_LIMIT}")
    after = Cursor.decode(query["after"]) if query.get("after") else None
    return Page(view, int(raw_limit), after)


def view_filter(view: str, username: str) -> ColumnElement[bool]:
    """The views are filters over the one order. Work queues (mine, unassigned, urgent) leave closed threads out."""
    return {
        "all": literal(True),
        "mine": and_(T.assigned_to == username, OPEN),
        "unassigned": and_(T.assigned_to.is_(None), OPEN),
        "needs_reply": NEEDS_REPLY,
        "urgent": and_(URGENT, OPEN),
        "closed": T.status == "closed",
    }[view]


def row_json(row, read_seq: int) -> dict:  # type: ignore[no-untyped-def]
    needs = row.last_sender == "citizen" and row.status != "closed"
    return {
        "id": row.id,
        "team": row.team_id,
        "status": row.status,
        "risk": row.risk,
        "assigned_to": row.assigned_to,
        "sealed_by": row.sealed_by,
        "created": rfc3339_minute(row.created),
        "last_activity": rfc3339_minute(row.last_activity),
        "expires": row.expires.isoformat(),
        "needs_reply": needs,
        "waiting_since": rfc3339_minute(row.waiting_since or row.last_activity) if needs else None,
        "last_sender": row.last_sender,
        "last_seq": row.last_seq,
        "read_seq": read_seq,
        "unread": row.last_seq > read_seq,
    }


COLUMNS = (
    T.id, T.team_id, T.status, T.risk, T.assigned_to, T.sealed_by, T.created, T.last_activity, T.expires,
    T.last_sender, T.waiting_since, T.last_seq, T.inbox_rank, T.inbox_key,
)


def page_of(conn: Connection, username: str, teams: list[str], page: Page) -> tuple[list[dict], str | None]:
    """One query per team, each read in index order and limited, merged here: a member of
    several teams costs (teams x page), never a sort of every thread."""
    rows: list[Row] = []
    for team_id in teams:
        query = (
            select(*COLUMNS)
            .where(T.team_id == team_id, view_filter(page.view, username))
            .order_by(T.inbox_rank, T.inbox_key, T.id)
            .limit(page.limit + 1)
        )
        if page.after is not None:
            query = query.where(tuple_(T.inbox_rank, T.inbox_key, T.id) > tuple_(
                literal(page.after.rank), literal(page.after.key), literal(page.after.id)))
        rows.extend(conn.execute(query).all())
    rows.sort(key=lambda r: (r.inbox_rank, r.inbox_key, r.id))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    read = _read_markers(conn, username, [r.id for r in rows])
    cursor = Cursor(rows[-1].inbox_rank, rows[-1].inbox_key, rows[-1].id).encode() if more and rows else None
    return [row_json(r, read.get(r.id, 0)) for r in rows], cursor


def _read_markers(conn: Connection, username: str, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    marker = ReadMarker.__table__.c
    result = conn.execute(select(marker.thread_id, marker.seq).where(marker.username == username, marker.thread_id.in_(ids)))
    return {thread_id: seq for thread_id, seq in result.all()}


def counts_of(conn: Connection, username: str, teams: list[str]) -> dict[str, int]:
    """How many threads each view holds, and how many open threads have messages the caller has not read.

    One GROUP BY over the few columns the views look at (read from the index `ix_threads_views`,
    a handful of groups whatever the team's size) is classified here; unread is "open threads"
    minus "open threads read to the end", the latter walked from the caller's read markers.
    """
    counts = dict.fromkeys(VIEWS, 0)
    grouped = conn.execute(
        select(T.status, T.risk, T.last_sender, T.assigned_to, func.count())
        .where(T.team_id.in_(teams))
        .group_by(T.status, T.risk, T.last_sender, T.assigned_to)
    )
    open_threads = 0
    for status, risk, last_sender, assigned_to, number in grouped.all():
        is_open = status != "closed"
        mine, unassigned = assigned_to == username, assigned_to is None
        counts["all"] += number
        open_threads += number if is_open else 0
        counts["closed"] += 0 if is_open else number
        counts["mine"] += number if is_open and mine else 0
        counts["unassigned"] += number if is_open and unassigned else 0
        counts["needs_reply"] += number if is_open and last_sender == "citizen" else 0
        counts["urgent"] += number if is_open and risk in ("acute", "high") else 0
    marker = ReadMarker.__table__.c
    # Driven from the caller's markers (EXISTS per marker, a primary-key look-up), so it costs what
    # the caller has read, not a look-up per thread of the team.
    read_to_end = conn.scalar(
        select(func.count())
        .select_from(ReadMarker.__table__)
        .where(marker.username == username, exists().where(
            T.id == marker.thread_id, T.team_id.in_(teams), OPEN, marker.seq >= T.last_seq))
    )
    return {**counts, "unread": open_threads - int(read_to_end or 0)}


async def list_page(db: Database, username: str, page: Page) -> dict:
    """`{threads, next, counts}`: one page of the view in the inbox order, and every view's count."""

    def read(conn: Connection) -> dict:
        teams = list(conn.scalars(select(Membership.team_id).where(Membership.username == username)))
        threads, cursor = page_of(conn, username, teams, page)
        return {"threads": threads, "next": cursor, "counts": counts_of(conn, username, teams)}

    # Short indexed reads in one transaction: on SQLite on the loop's own connection (issue 9).
    return await db.read_core(read)


def parse_ids(raw: str) -> list[str]:
    """`?ids=a,b,c`: 1 to MAX_PREVIEWS thread ids."""
    ids = [part for part in raw.split(",") if part]
    if not 1 <= len(ids) <= MAX_PREVIEWS or any(len(i) > 32 or not i.replace("-", "").replace("_", "").isalnum() or not i.isascii() for i in ids):
        raise BadRequest("bad_ids", f"ids is 1 to {MAX_PREVIEWS} thread ids, separated by commas")
    return list(dict.fromkeys(ids))


async def newest_messages(db: Database, username: str, ids: list[str]) -> list[dict]:
    """The newest message of each of these threads (of the caller's teams; others are left out
    silently, like threads that are gone): the browser decrypts it for a one-line preview."""
    message = Message.__table__.c
    async with db.read() as session:
        teams = list(await session.scalars(select(Membership.team_id).where(Membership.username == username)))
        rows = await session.execute(
            select(T.id, T.citizen_pk, message.seq, message.sender, message.at, message.envelope)
            .join(Message.__table__, and_(message.thread_id == T.id, message.seq == T.last_seq))
            .where(T.id.in_(ids), T.team_id.in_(teams))
        )
        return [
            # citizen_pk: what a version-2 envelope is bound to (CRYPTO.md), so the browser can check it.
            {"id": r.id, "citizen_pk": b64(r.citizen_pk), "seq": r.seq, "from": r.sender, "at": rfc3339_minute(r.at),
             "envelope": json.loads(r.envelope)}
            for r in rows.all()
        ]
