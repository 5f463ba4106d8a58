"""Grants for members who joined after a team key was made (CRYPTO.md "Team membership and grants").

A teammate's browser that holds a team key seals it to each new member's
`C.pk` and posts the box. The server cannot open a box; it accepts one only
for an active member of that team, for a key of that team, from a member who
holds that key. An existing grant is never replaced.
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import b64
from gateway.db import Database, utcnow
from gateway.errors import BadRequest, Forbidden
from gateway.jsonio import usable_public_key
from gateway.models import Event, Grant, TeamKey
from gateway.services import audit
from gateway.services.consultants import teams_of
from gateway.services.keys import active_members

MAX_GRANTS = 256

# Content-free events (issue 13) so sharing does not wait for a login: a new member's
# enrolment tells the key holders' open inboxes to share now; a new grant tells the
# new member's open inbox to fetch its keys again. Team-wide, so `thread` is empty.
GRANTS_PENDING = "grants_pending"
KEYS_SHARED = "keys_shared"


def announce(session: AsyncSession, team_ids: list[str] | set[str], kind: str) -> None:
    now = utcnow()
    for team_id in sorted(team_ids):
        session.add(Event(team_id=team_id, kind=kind, thread_id="", created=now))


async def announce_pending(session: AsyncSession, username: str) -> None:
    """A member joined (or finished enrolment): every open inbox of their teams shares keys now."""
    announce(session, await teams_of(session, username), GRANTS_PENDING)
SEALED_KEY_BYTES = 32 + 16 + 32  # crypto_box_seal of a 32-byte team secret key


@dataclass(frozen=True)
class NewGrant:
    team: str
    kid: str
    username: str
    box: bytes


async def _held_keys(session: AsyncSession, username: str) -> list[TeamKey]:
    """Team keys of the caller's teams for which the caller has a grant."""
    teams = await teams_of(session, username)
    rows = await session.scalars(
        select(TeamKey)
        .join(Grant, (Grant.kid == TeamKey.kid) & (Grant.username == username))
        .where(TeamKey.team_id.in_(teams))
        .order_by(TeamKey.team_id, TeamKey.created)
    )
    return list(rows)


async def pending(db: Database, username: str) -> list[dict]:
    """Active teammates lacking a grant for a key the caller holds (retired keys too: old threads)."""
    async with db.read() as session:
        result = []
        for key in await _held_keys(session, username):
            granted = set(await session.scalars(select(Grant.username).where(Grant.kid == key.kid)))
            for member in await active_members(session, key.team_id):
                if member.username not in granted and member.pk is not None:
                    result.append({"team": key.team_id, "kid": key.kid, "username": member.username, "pk": b64(member.pk)})
        return result


def not_allowed() -> Forbidden:
    return Forbidden("not_allowed", "a grant is accepted only for an active member of the key's team, from a member who holds it")


async def add(db: Database, username: str, grants: list[NewGrant]) -> int:
    """Store the grants (all or none); returns how many were new."""
    if not 1 <= len(grants) <= MAX_GRANTS:
        raise BadRequest("bad_grants", f"send 1 to {MAX_GRANTS} grants")
    for grant in grants:
        # A sealed box starts with its ephemeral public key: a low-order one means it opens for anyone.
        if len(grant.box) != SEALED_KEY_BYTES or not usable_public_key(grant.box[:32]):
            raise BadRequest("bad_box", f"a grant box is a {SEALED_KEY_BYTES}-byte sealed box made to a usable key")
    try:
        return await _add(db, username, grants)
    except IntegrityError:
        # Two teammates granted the same key at once (PostgreSQL): the second pass skips it.
        return await _add(db, username, grants)


async def _add(db: Database, username: str, grants: list[NewGrant]) -> int:
    added = 0
    async with db.write() as session:
        held = {key.kid: key for key in await _held_keys(session, username)}
        members: dict[str, set[str]] = {}
        for grant in grants:
            key = held.get(grant.kid)
            if key is None or key.team_id != grant.team:
                raise not_allowed()
            if grant.team not in members:
                members[grant.team] = {m.username for m in await active_members(session, grant.team) if m.pk is not None}
            if grant.username not in members[grant.team]:
                raise not_allowed()
        now = utcnow()
        seen: set[tuple[str, str]] = set()
        for grant in grants:
            if (grant.kid, grant.username) in seen or await session.get(Grant, (grant.kid, grant.username)) is not None:
                continue
            seen.add((grant.kid, grant.username))
            session.add(Grant(kid=grant.kid, username=grant.username, box=grant.box, created=now))
            audit.record(session, username, "grants.add", f"team={grant.team} kid={grant.kid} to={grant.username}")
            added += 1
        if added:
            announce(session, {grant.team for grant in grants}, KEYS_SHARED)
    return added
