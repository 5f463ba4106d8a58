"""Fill a deployment's SQLite file quickly with well-formed rows, in set-based SQL (not via the API).

Used with the gateway stopped: expired threads for `fristed purge`, live threads
for the staff inbox. Rows look like the gateway's own: 16-character ids, random
32-byte `lookup`s, minute-precision times, one real sealed
envelope per message (the same ciphertext in every row, to one throw-away
citizen key: the server cannot tell), the envelope's team kid in `envelope_kids`, an event per thread, and
audit rows that name threads, as staff triage leaves them.
"""

import json
import sqlite3
from pathlib import Path

from nacl.public import PrivateKey

from crypto import seal_envelope

SERIES = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :count)"


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.execute("PRAGMA busy_timeout=30000")
    # Seeding is set-up, not a measured write, done with the gateway stopped: no journal, no fsync,
    # a large cache (`restore_wal` puts the file back in WAL mode afterwards).
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-262144")
    return connection


def restore_wal(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")


def team_key(connection: sqlite3.Connection, team: str) -> tuple[str, bytes]:
    row = connection.execute("SELECT kid, pk FROM team_keys WHERE team_id = ? AND current", (team,)).fetchone()
    if row is None:
        raise RuntimeError(f"team {team} has no current key")
    return row[0], row[1]


def _columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}


def seed_threads(path: Path, *, count: int, tag: str, team: str = "demo", expired: bool, replies_every: int = 0,
                 audit_every: int = 0, assign_to: str | None = None) -> None:
    """`count` threads with ids `tag` + a 14-digit number, one citizen message each (and a
    consultant reply on every `replies_every`-th), plus kid rows, events and audit rows."""
    connection = connect(path)
    try:
        team_kid, team_pk = team_key(connection, team)
        # One citizen key for every seeded thread (its secret is thrown away): the envelope names its kid.
        citizen_pk = bytes(PrivateKey.generate().public_key)
        envelope = json.dumps(seal_envelope({"text": "x" * 300}, [team_pk, citizen_pk]), separators=(",", ":"),
                              sort_keys=True)
        # Expired: last active 40 days ago, expired 10 days ago. Live: active within the last 10 days.
        activity = "'-40 days'" if expired else "printf('-%d minutes', (i * 7) % 14400)"
        expires = "date('now', '-10 days')" if expired else "date('now', '+20 days')"
        moment = f"strftime('%Y-%m-%d %H:%M:00.000000', 'now', {activity})"
        has_reply = f"(i % {replies_every} = 0)" if replies_every else "0"
        thread_id = f"'{tag}' || printf('%014d', i)"
        values = {
            "id": thread_id,
            "team_id": ":team",
            "lookup": "randomblob(32)",
            "citizen_pk": ":citizen_pk",
            "status": "CASE i % 4 WHEN 0 THEN 'new' WHEN 1 THEN 'open' WHEN 2 THEN 'waiting' ELSE 'closed' END",
            "risk": "CASE WHEN i % 100 = 0 THEN 'acute' WHEN i % 50 = 1 THEN 'high' "
                    "WHEN i % 5 = 2 THEN 'low' ELSE 'unknown' END",
            "assigned_to": ":assignee",
            "sealed_by": "CASE WHEN i % 20 = 0 THEN 'server' ELSE 'browser' END",
            "created": moment,
            "last_activity": moment,
            "expires": expires,
            "last_seq": f"1 + {has_reply}",
            "total_bytes": f"length(:envelope) * (1 + {has_reply})",
            "last_sender": f"CASE WHEN {has_reply} THEN 'consultant' ELSE 'citizen' END",
            "waiting_since": f"CASE WHEN {has_reply} THEN NULL ELSE {moment} END",
        }
        present = _columns(connection, "threads")
        chosen = {k: v for k, v in values.items() if k in present}
        params = {"count": count, "team": team, "assignee": assign_to, "envelope": envelope, "kid": team_kid,
                  "citizen_pk": citizen_pk}
        connection.execute("BEGIN")
        connection.execute(
            f"{SERIES} INSERT INTO threads ({', '.join(chosen)}) SELECT {', '.join(chosen.values())} FROM n", params)
        connection.execute(
            f"{SERIES} INSERT INTO messages (thread_id, seq, sender, at, envelope) "
            f"SELECT {thread_id}, 1, 'citizen', {moment}, :envelope FROM n", params)
        if replies_every:
            connection.execute(
                f"{SERIES} INSERT INTO messages (thread_id, seq, sender, at, envelope) "
                f"SELECT {thread_id}, 2, 'consultant', {moment}, :envelope FROM n WHERE {has_reply}", params)
        connection.execute(
            f"{SERIES} INSERT INTO envelope_kids (thread_id, kid) SELECT {thread_id}, :kid FROM n", params)
        connection.execute(
            f"{SERIES} INSERT INTO events (team_id, kind, thread_id, created) "
            f"SELECT :team, 'thread_new', {thread_id}, {moment} FROM n", params)
        if audit_every:
            connection.execute(
                f"{SERIES} INSERT INTO audit (at, actor, action, detail) "
                f"SELECT {moment}, 'demo', 'thread.risk', 'thread=' || {thread_id} || ' risk=high' "
                f"FROM n WHERE i % {audit_every} = 0", params)
        connection.execute("COMMIT")
        restore_wal(connection)
    finally:
        connection.close()


def count_threads(path: Path, *, expired: bool | None = None) -> int:
    connection = sqlite3.connect(path, timeout=30)
    try:
        where = "" if expired is None else ("WHERE expires < date('now')" if expired else "WHERE expires >= date('now')")
        return int(connection.execute(f"SELECT count(*) FROM threads {where}").fetchone()[0])
    finally:
        connection.close()


def forget_purge_lease(path: Path) -> None:
    """So the next gateway start runs its scheduled purge (`gateway.services.purge.claim_round`)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        connection.execute("DELETE FROM meta WHERE key = 'purge_next'")
    finally:
        connection.close()

