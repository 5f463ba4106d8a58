"""Teams and their current keys."""

import re
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import run, utcnow
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.models import Team, TeamKey
from gateway.writer import Tx

ID_RE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")


@dataclass(frozen=True)
class TeamKeys:
    """The kids a recipient rule needs: the current one and the retired ones."""

    current: TeamKey | None
    retired_kids: frozenset[str]


@dataclass(frozen=True)
class KeyView:
    """A team's keys as the hot write path needs them (plain values, read once per batch)."""

    current_kid: str | None
    current_pk: bytes | None
    retired_kids: frozenset[str]


TEAM_KEYS = select(TeamKey.kid, TeamKey.pk, TeamKey.current).where(TeamKey.team_id == bindparam("team_id"))


def _read_keys(conn: Connection, team_id: str) -> KeyView:
    rows = run(conn, TEAM_KEYS, {"team_id": team_id})
    current = next((row for row in rows if row[2]), None)
    return KeyView(
        current[0] if current else None,
        current[1] if current else None,
        frozenset(row[0] for row in rows if not row[2]),
    )


def key_view(tx: Tx, team_id: str) -> KeyView:
    """The team's keys, read once per write batch (issue 9)."""
    return tx.remember(("team-keys", team_id), lambda: _read_keys(tx.conn, team_id))


def check_id(value: str, what: str = "id") -> str:
    if not ID_RE.match(value):
        raise BadRequest("bad_id", f"a {what} is 1-64 characters: lowercase letters, digits, '-' and '_'")
    return value


async def add_team(session: AsyncSession, team_id: str, name: str) -> Team:
    check_id(team_id, "team id")
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise BadRequest("bad_name", "a team name is 1-200 characters")
    if await session.get(Team, team_id) is not None:
        raise Conflict("team_exists", f"team {team_id} already exists")
    team = Team(id=team_id, name=name, created=utcnow())
    session.add(team)
    return team


async def get_team(session: AsyncSession, team_id: str) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound("unknown_team", f"no team {team_id}")
    return team


async def team_keys(session: AsyncSession, team_id: str) -> TeamKeys:
    rows = (await session.scalars(select(TeamKey).where(TeamKey.team_id == team_id))).all()
    current = next((k for k in rows if k.current), None)
    return TeamKeys(current, frozenset(k.kid for k in rows if not k.current))


async def offered_teams(session: AsyncSession) -> list[tuple[Team, TeamKey]]:
    """Teams a citizen may write to: those with a current key (CRYPTO.md)."""
    rows = await session.execute(
        select(Team, TeamKey).join(TeamKey, TeamKey.team_id == Team.id).where(TeamKey.current.is_(True)).order_by(Team.id)
    )
    return [(team, key) for team, key in rows]
