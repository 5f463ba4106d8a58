"""The audit log: time, actor, action; never content, never anything about a citizen."""

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import minute, utcnow
from gateway.models import AuditEntry


def record(session: AsyncSession, actor: str, action: str, detail: str = "") -> None:
    session.add(AuditEntry(at=minute(utcnow()), actor=actor, action=action, detail=detail))
