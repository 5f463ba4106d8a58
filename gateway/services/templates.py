"""Reply templates per team (issue 13): sealed in the browser to the team's current key,
like an internal note, so the server stores only ciphertext. The envelope's
plaintext is `{"title", "text"}`; the server never sees either. Any member may
add, replace or delete a team's templates; each change is audited (never the
content)."""

import json

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import CryptoError, check_recipients, parse_envelope
from crypto.envelope import Envelope
from gateway.db import Database, minute, rfc3339_minute, utcnow
from gateway.errors import Conflict, Forbidden, NotFound, from_crypto
from gateway.models import ReplyTemplate
from gateway.services import audit
from gateway.services.consultants import teams_of
from gateway.services.teams import team_keys

MAX_TEMPLATES_PER_TEAM = 100


def template_json(template: ReplyTemplate) -> dict:
    return {
        "id": template.id,
        "team": template.team_id,
        "author": template.author,
        "created": rfc3339_minute(template.created),
        "envelope": json.loads(template.envelope),
    }


async def _sealed_to_team(session: AsyncSession, team_id: str, envelope: object, max_bytes: int) -> Envelope:
    try:
        parsed = parse_envelope(envelope, max_bytes=max_bytes)
        keys = await team_keys(session, team_id)
        if keys.current is None:
            raise NotFound("unknown_team", "the team has no current key")
        check_recipients(parsed, {keys.current.kid}, set(keys.retired_kids))
    except CryptoError as exc:
        raise from_crypto(exc) from None
    return parsed


async def list_templates(db: Database, username: str) -> list[dict]:
    async with db.read() as session:
        teams = await teams_of(session, username)
        rows = await session.scalars(
            select(ReplyTemplate).where(ReplyTemplate.team_id.in_(teams)).order_by(ReplyTemplate.team_id, ReplyTemplate.id)
        )
        return [template_json(t) for t in rows]


async def add_template(db: Database, username: str, team_id: str, envelope: object, max_bytes: int) -> dict:
    async with db.write() as session:
        if team_id not in await teams_of(session, username):
            raise Forbidden("not_a_member", "you are not a member of this team")
        count = await session.scalar(select(func.count()).select_from(ReplyTemplate).where(ReplyTemplate.team_id == team_id))
        if (count or 0) >= MAX_TEMPLATES_PER_TEAM:
            raise Conflict("too_many_templates", f"a team keeps at most {MAX_TEMPLATES_PER_TEAM} templates; delete one first")
        parsed = await _sealed_to_team(session, team_id, envelope, max_bytes)
        template = ReplyTemplate(team_id=team_id, author=username, created=minute(utcnow()), envelope=parsed.to_json())
        session.add(template)
        await session.flush()
        audit.record(session, username, "template.add", f"team={team_id} id={template.id}")
        return template_json(template)


async def _own_template(session: AsyncSession, username: str, template_id: int) -> ReplyTemplate:
    template = await session.get(ReplyTemplate, template_id)
    if template is None or template.team_id not in await teams_of(session, username):
        raise NotFound("unknown_template", "no such template in your teams")
    return template


async def replace_template(db: Database, username: str, template_id: int, envelope: object, max_bytes: int) -> dict:
    """A new text (or a template re-sealed to a rotated team key): same id, new envelope."""
    async with db.write() as session:
        template = await _own_template(session, username, template_id)
        template.envelope = (await _sealed_to_team(session, template.team_id, envelope, max_bytes)).to_json()
        audit.record(session, username, "template.replace", f"team={template.team_id} id={template.id}")
        return template_json(template)


async def delete_template(db: Database, username: str, template_id: int) -> None:
    async with db.write() as session:
        template = await _own_template(session, username, template_id)
        await session.delete(template)
        audit.record(session, username, "template.delete", f"team={template.team_id} id={template.id}")
