"""The inbox order's triggers (issue 13), as SQL for the migrations that create them.

The inbox orders by danger, then by how long a citizen has waited. Two stored
numbers on each thread answer that in index order (`gateway.services.listing`):
`inbox_rank` 0-5 (acute, high, other; needing a reply or not) and `inbox_key`
(minutes since 1970 of `waiting_since` while the thread needs a reply, so the
longest wait comes first; else minus those of `last_activity`, so the most
recent comes first). Triggers keep them, and `last_sender`/`waiting_since`,
true on every write path without the path knowing about the inbox.

Migration 0004 made them; 0005 made them `guarded`: each UPDATE carries its
own change as a condition, so a trigger whose values are already right
writes nothing. A citizen's reply to a thread that already waits then costs
no extra row write at all, and neither does a creation, which inserts
`last_sender`, `waiting_since` and `waiting_order(now)` with the row
(issue 9: the write path is measured).
"""

import calendar
import datetime as dt

NEEDS = "(last_sender = 'citizen' AND status <> 'closed')"
RANK = f"((CASE risk WHEN 'acute' THEN 0 WHEN 'high' THEN 2 ELSE 4 END) + (CASE WHEN {NEEDS} THEN 0 ELSE 1 END))"
SQLITE_MINUTES = "(CAST(strftime('%s', {}) AS INTEGER) / 60)"
PG_MINUTES = "(CAST(EXTRACT(EPOCH FROM {}) AS BIGINT) / 60)"
# What a new message makes of its thread's `waiting_since`.
WAITING = "CASE WHEN NEW.sender = 'citizen' THEN COALESCE(waiting_since, NEW.at) ELSE NULL END"
SQLITE_NAMES = ("trg_threads_inbox_update", "trg_threads_inbox_insert", "trg_messages_inbox")


def waiting_order(since: dt.datetime) -> dict[str, int]:
    """`inbox_rank` and `inbox_key` of a new thread (risk unknown, its citizen waiting since
    `since`, naive UTC), as the triggers compute them. Inserted with the row, the insert trigger
    finds them right and writes nothing; were they ever wrong, it would correct them."""
    return {"inbox_rank": 4, "inbox_key": calendar.timegm(since.timetuple()) // 60}


def key(minutes: str) -> str:
    return (f"(CASE WHEN {NEEDS} THEN {minutes.format('COALESCE(waiting_since, last_activity)')} "
            f"ELSE -{minutes.format('last_activity')} END)")


def _new(expression: str) -> str:
    """The expression over NEW's columns (PostgreSQL's BEFORE trigger sets NEW's fields)."""
    for column in ("last_sender", "status", "risk", "waiting_since", "last_activity"):
        expression = expression.replace(column, f"NEW.{column}")
    return expression


def _message_update(guarded: bool, differs: str) -> str:
    change = f" AND (last_sender {differs} NEW.sender OR waiting_since {differs} ({WAITING}))" if guarded else ""
    return f"""UPDATE threads SET
    last_sender = NEW.sender,
    waiting_since = {WAITING}
  WHERE id = NEW.thread_id{change};"""  # noqa: S608 (constant SQL, no input)


def sqlite_triggers(*, guarded: bool) -> tuple[str, ...]:
    order = f"inbox_rank = {RANK}, inbox_key = {key(SQLITE_MINUTES)}"
    change = f" AND (inbox_rank IS NOT {RANK} OR inbox_key IS NOT {key(SQLITE_MINUTES)})" if guarded else ""
    return (
        f"""CREATE TRIGGER trg_messages_inbox AFTER INSERT ON messages
BEGIN
  {_message_update(guarded, "IS NOT")}
END""",
        f"""CREATE TRIGGER trg_threads_inbox_insert AFTER INSERT ON threads
BEGIN
  UPDATE threads SET {order} WHERE id = NEW.id{change};
END""",  # noqa: S608 (constant SQL, no input)
        f"""CREATE TRIGGER trg_threads_inbox_update AFTER UPDATE OF risk, status, last_sender, waiting_since, last_activity ON threads
BEGIN
  UPDATE threads SET {order} WHERE id = NEW.id{change};
END""",  # noqa: S608 (constant SQL, no input)
    )


def pg_messages_function(*, guarded: bool) -> str:
    return f"""CREATE OR REPLACE FUNCTION fristed_messages_inbox() RETURNS trigger AS $$
BEGIN
  {_message_update(guarded, "IS DISTINCT FROM")}
  RETURN NULL;
END
$$ LANGUAGE plpgsql"""


def pg_triggers(*, guarded: bool) -> tuple[str, ...]:
    return (
        pg_messages_function(guarded=guarded),
        """CREATE TRIGGER trg_messages_inbox AFTER INSERT ON messages
FOR EACH ROW EXECUTE FUNCTION fristed_messages_inbox()""",
        f"""CREATE OR REPLACE FUNCTION fristed_threads_inbox() RETURNS trigger AS $$
BEGIN
  NEW.inbox_rank := {_new(RANK)};
  NEW.inbox_key := {_new(key(PG_MINUTES))};
  RETURN NEW;
END
$$ LANGUAGE plpgsql""",
        """CREATE TRIGGER trg_threads_inbox BEFORE INSERT OR UPDATE ON threads
FOR EACH ROW EXECUTE FUNCTION fristed_threads_inbox()""",
    )
