"""Deployment-wide values stored with the data."""

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import b64, unb64
from gateway.db import Database, utcnow
from gateway.models import Meta, Team, TeamKey

CODE_SALT = "code_salt"
KDF_HISTORY = "kdf_history"


async def get_code_salt(session: AsyncSession) -> bytes:
    row = await session.get(Meta, CODE_SALT)
    if row is None:
        raise RuntimeError("the database has no code_salt: run `fristed init`")
    return unb64(row.value, length=16)


async def set_code_salt(session: AsyncSession, salt: bytes) -> None:
    session.add(Meta(key=CODE_SALT, value=b64(salt)))


@dataclass(frozen=True)
class Kdf:
    """An Argon2id cost citizen codes were derived with; `until` is the day it stopped being current."""

    ops: int
    mem: int
    until: dt.date | None = None


def _load(row: Meta | None) -> list[Kdf]:
    return _parse(row.value) if row is not None else []


def _parse(value: str) -> list[Kdf]:
    return [Kdf(e["ops"], e["mem"], dt.date.fromisoformat(e["until"]) if e["until"] else None) for e in json.loads(value)]


def _dump(history: list[Kdf]) -> str:
    return json.dumps([{"ops": k.ops, "mem": k.mem, "until": k.until.isoformat() if k.until else None} for k in history])


async def record_kdf(db: Database, ops: int, mem: int) -> None:
    """Remember the cost in force now, so codes made under an earlier one still open.

    INTERFACES.md: raising the cost applies to *new* citizen threads; a thread
    cannot be found without its access token, and the token depends on the
    cost, so `/api/v1/config` publishes the earlier costs for the pickup to try.
    Called when a gateway starts; several processes starting at once agree.
    """
    today = utcnow().date()
    try:
        async with db.write() as session:
            row = await session.get(Meta, KDF_HISTORY)
            history = _load(row)
            if history and (history[-1].ops, history[-1].mem) == (ops, mem):
                return
            history = [Kdf(k.ops, k.mem, k.until or today) for k in history if (k.ops, k.mem) != (ops, mem)]
            history.append(Kdf(ops, mem))
            if row is None:
                session.add(Meta(key=KDF_HISTORY, value=_dump(history)))
            else:
                row.value = _dump(history)
    except IntegrityError:
        pass  # another process recorded it first


async def previous_kdf(session: AsyncSession, ops: int, mem: int, retention_days: int) -> list[Kdf]:
    """Earlier costs, newest first, while a thread made under them may still exist."""
    return _previous(_load(await session.get(Meta, KDF_HISTORY)), ops, mem, retention_days)


def config_data(conn: Connection, ops: int, mem: int, retention_days: int) -> tuple[bytes, list[Kdf], list]:
    """What `/api/v1/config` publishes from the database, in one read (`gateway.configcache`):
    the code salt, the earlier Argon2id costs, and the teams with a current key (id, name, kid, pk)."""
    values = dict(conn.execute(select(Meta.key, Meta.value).where(Meta.key.in_([CODE_SALT, KDF_HISTORY]))).all())
    if CODE_SALT not in values:
        raise RuntimeError("the database has no code_salt: run `fristed init`")
    history = _parse(values.get(KDF_HISTORY, "[]"))
    teams = conn.execute(
        select(Team.id, Team.name, TeamKey.kid, TeamKey.pk)
        .join(TeamKey, TeamKey.team_id == Team.id)
        .where(TeamKey.current.is_(True))
        .order_by(Team.id)
    ).all()
    return unb64(values[CODE_SALT], length=16), _previous(history, ops, mem, retention_days), list(teams)


def _previous(history: list[Kdf], ops: int, mem: int, retention_days: int) -> list[Kdf]:
    oldest_needed = utcnow().date() - dt.timedelta(days=retention_days + 1)
    return [
        k for k in reversed(history)
        if (k.ops, k.mem) != (ops, mem) and k.until is not None and k.until >= oldest_needed
    ]
