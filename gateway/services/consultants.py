"""Consultants: creation (invite), enrolment, and what login needs."""

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.encoding import b64, blake2b
from gateway import secretbox
from gateway.db import utcnow
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.models import Consultant, Duty, Grant, Invite, Membership, Outbox, StaffSession, TeamKey, Thread
from gateway.services import audit
from gateway.services.keys import active_members, rotate_team_key
from gateway.services.teams import check_id, get_team

TOTP_PURPOSE = "totp"


@dataclass(frozen=True)
class Enrolment:
    """What the browser sends at enrolment (CRYPTO.md "Consultant passphrase")."""

    salt: bytes
    auth_key: bytes
    pk: bytes
    key_blob: bytes


async def create_consultant(
    session: AsyncSession, username: str, teams: list[str], email: str | None, kdf_ops: int, kdf_mem: int
) -> Consultant:
    """A consultant in state `invited`, member of `teams`."""
    check_id(username, "username")
    if not teams:
        raise BadRequest("no_team", "a consultant belongs to at least one team")
    existing = await session.get(Consultant, username)
    if existing is not None and existing.status != "removed":
        raise Conflict("consultant_exists", f"consultant {username} already exists")
    for team_id in teams:
        await get_team(session, team_id)
    if existing is not None:
        await session.delete(existing)
        await session.flush()
    consultant = Consultant(
        username=username,
        status="invited",
        email=email,
        kdf_ops=kdf_ops,
        kdf_mem=kdf_mem,
        totp_last_step=0,
        failed_logins=0,
        created=utcnow(),
    )
    session.add(consultant)
    await session.flush()
    for team_id in sorted(set(teams)):
        session.add(Membership(username=username, team_id=team_id))
    return consultant


async def complete_enrolment(
    session: AsyncSession, server_secret: bytes, username: str, enrolment: Enrolment, totp_secret: str
) -> Consultant:
    """Store the consultant's public half, key_blob and auth hash; mark them active."""
    consultant = await session.get(Consultant, username)
    if consultant is None:
        raise NotFound("unknown_consultant", f"no consultant {username}")
    if consultant.status != "invited":
        raise Conflict("already_enrolled", f"consultant {username} is not waiting for enrolment")
    consultant.salt = enrolment.salt
    consultant.auth_hash = blake2b(32, enrolment.auth_key)
    consultant.pk = enrolment.pk
    consultant.key_blob = enrolment.key_blob
    consultant.totp_sealed = secretbox.seal(server_secret, TOTP_PURPOSE, totp_secret.encode("ascii"))
    consultant.status = "active"
    return consultant


def totp_secret_of(server_secret: bytes, consultant: Consultant) -> str:
    if consultant.totp_sealed is None:
        raise Conflict("not_enrolled", "the consultant has not finished enrolment")
    return secretbox.unseal(server_secret, TOTP_PURPOSE, consultant.totp_sealed).decode("ascii")


async def teams_of(session: AsyncSession, username: str) -> list[str]:
    rows = await session.scalars(select(Membership.team_id).where(Membership.username == username).order_by(Membership.team_id))
    return list(rows)


def invite_expiry(now: dt.datetime | None = None) -> dt.datetime:
    """Enrolment links are valid 72 hours (INTERFACES.md)."""
    return (now or utcnow()) + dt.timedelta(hours=72)


def invite_token_hash(token: str) -> bytes:
    """Invites are stored only as a hash of their token."""
    return blake2b(32, token.encode("ascii"))


async def create_invite(
    session: AsyncSession,
    username: str,
    teams: list[str],
    email: str | None,
    kdf_ops: int,
    kdf_mem: int,
) -> str:
    """A new consultant in state `invited` and a one-time enrolment token (72 h).

    Returns the token; the URL is `{public_url}/staff/enroll#{token}` (the
    fragment never reaches a server log).
    """
    await create_consultant(session, username, teams, email, kdf_ops, kdf_mem)
    token = b64(secrets.token_bytes(24))
    session.add(Invite(token_hash=invite_token_hash(token), username=username, expires=invite_expiry()))
    return token


@dataclass(frozen=True)
class Removal:
    """What removing a consultant did to their teams' keys (kids only)."""

    username: str
    teams: list[str]
    rotated: dict[str, str]  # team -> new kid
    retired: dict[str, str]  # team -> kid retired without a successor (nobody enrolled is left)


async def list_consultants(session: AsyncSession) -> list[tuple[Consultant, list[str]]]:
    """Every consultant with the teams they belong to, by username."""
    consultants = (await session.scalars(select(Consultant).order_by(Consultant.username))).all()
    memberships = (await session.execute(select(Membership.username, Membership.team_id).order_by(Membership.team_id))).all()
    teams: dict[str, list[str]] = {}
    for username, team_id in memberships:
        teams.setdefault(username, []).append(team_id)
    return [(consultant, teams.get(consultant.username, [])) for consultant in consultants]


async def remove_consultant(session: AsyncSession, username: str, actor: str) -> Removal:
    """Remove a consultant for good and rotate every team key they could open.

    Their key material (key_blob, pk, salt, auth hash, sealed TOTP seed), grants,
    sessions, duty, pending invites and notifications are deleted, and so are
    their memberships: a removed consultant belongs to no team. Threads assigned
    to them go back to their team unassigned. The row stays (status `removed`)
    so the name is visibly taken until it is invited again.

    Each team they were in gets a new key sealed to the members who remain
    (CRYPTO.md "Rotation and shredding"); a team with no enrolled member left
    has its key retired without a successor and takes no new threads until a
    new member enrols and `fristed keys rotate --team` runs. A consultant who
    never enrolled held no key, so nothing is rotated for them.
    """
    consultant = await session.get(Consultant, username)
    if consultant is None:
        raise NotFound("unknown_consultant", f"no consultant {username}")
    if consultant.status == "removed":
        raise Conflict("already_removed", f"consultant {username} is already removed")
    held_keys = consultant.pk is not None or bool(
        await session.scalar(select(Grant.kid).where(Grant.username == username).limit(1))
    )
    teams = await teams_of(session, username)
    for model in (Grant, StaffSession, Duty, Invite, Outbox, Membership):
        await session.execute(delete(model).where(model.username == username))  # type: ignore[attr-defined]
    await session.execute(update(Thread).where(Thread.assigned_to == username).values(assigned_to=None))
    consultant.status = "removed"
    consultant.email = None
    consultant.salt = consultant.auth_hash = consultant.pk = consultant.key_blob = consultant.totp_sealed = None
    consultant.failed_logins = 0
    consultant.login_blocked_until = None
    await session.flush()
    rotated: dict[str, str] = {}
    retired: dict[str, str] = {}
    for team_id in teams if held_keys else []:
        if any(member.pk is not None for member in await active_members(session, team_id)):
            rotated[team_id] = await rotate_team_key(session, team_id, actor)
            continue
        current = await session.scalar(select(TeamKey).where(TeamKey.team_id == team_id, TeamKey.current.is_(True)))
        if current is not None:
            current.current = False
            current.retired = utcnow()
            retired[team_id] = current.kid
            audit.record(session, actor, "keys.retire", f"team={team_id} kid={current.kid} (no enrolled member left)")
    audit.record(session, actor, "consultant.remove", f"username={username} teams={','.join(teams)}")
    return Removal(username, teams, rotated, retired)
