"""Deployment-wide values stored with the data."""

from sqlalchemy.ext.asyncio import AsyncSession

from crypto import b64, unb64
from gateway.models import Meta

CODE_SALT = "code_salt"


async def get_code_salt(session: AsyncSession) -> bytes:
    row = await session.get(Meta, CODE_SALT)
    if row is None:
        raise RuntimeError("the database has no code_salt: run `fristed init`")
    return unb64(row.value, length=16)


async def set_code_salt(session: AsyncSession, salt: bytes) -> None:
    session.add(Meta(key=CODE_SALT, value=b64(salt)))
