"""Team keys: rotation and grants (CRYPTO.md "Rotation and shredding")."""

from nacl.public import PrivateKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import kid
from crypto.envelope import seal_box
from gateway.db import utcnow
from gateway.errors import Conflict
from gateway.models import Consultant, Grant, Membership, TeamKey
from gateway.services import audit
from gateway.services.teams import get_team


async def active_members(session: AsyncSession, team_id: str) -> list[Consultant]:
    rows = await session.scalars(
        select(Consultant)
        .join(Membership, Membership.username == Consultant.username)
        .where(Membership.team_id == team_id, Consultant.status == "active")
        .order_by(Consultant.username)
    )
    return list(rows)


async def rotate_team_key(session: AsyncSession, team_id: str, actor: str) -> str:
    """Make a new team key, seal it to every active member, make it current.

    The secret half exists only in this function's memory; what is stored is
    the public key and one sealed grant per member. Returns the new kid.
    """
    await get_team(session, team_id)
    members = [m for m in await active_members(session, team_id) if m.pk is not None]
    if not members:
        raise Conflict("no_members", f"team {team_id} has no enrolled member to hold its key")
    secret = PrivateKey.generate()
    pk = bytes(secret.public_key)
    new_kid = kid(pk)
    now = utcnow()
    await session.execute(
        update(TeamKey).where(TeamKey.team_id == team_id, TeamKey.current.is_(True)).values(current=False, retired=now)
    )
    session.add(TeamKey(kid=new_kid, team_id=team_id, pk=pk, current=True, created=now))
    await session.flush()
    for member in members:
        assert member.pk is not None
        session.add(Grant(kid=new_kid, username=member.username, box=seal_box(member.pk, bytes(secret)), created=now))
    del secret
    audit.record(session, actor, "keys.rotate", f"team={team_id} kid={new_kid}")
    return new_kid
