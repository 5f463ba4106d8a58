"""Enrolment from a one-time invite (`/staff/enroll#TOKEN`, valid 72 h).

`start` makes (once) the TOTP secret, stores it sealed on the invite row and
fixes the consultant's Argon2id cost to the deployment's current one; `finish`
checks a code for that secret and stores what the browser made (salt,
BLAKE2b(auth_key), C.pk, key_blob). An unknown, expired or used token is 404
`unknown_invite`, the same for all three, so a token cannot be probed.
"""

import io
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import secretbox
from gateway.db import Database, utcnow
from gateway.errors import BadRequest, NotFound
from gateway.jsonio import usable_public_key
from gateway.models import Consultant, Invite
from gateway.services import audit, grants
from gateway.services.consultants import TOTP_PURPOSE, Enrolment, complete_enrolment, invite_token_hash
from gateway.services.login import totp_step
from gateway.settings import Settings

ISSUER = "Fristed"
MAX_TOKEN_CHARS = 128


@dataclass(frozen=True)
class Started:
    username: str
    totp_uri: str
    totp_qr: str
    ops: int
    mem: int


def qr_svg(uri: str, label: str) -> str:
    """The otpauth URI as an SVG QR code (segno, made here: no external service, no script)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer, kind="svg", scale=5, border=4, dark="#000", light="#fff", xmldecl=False, svgns=True, nl=False,
        title=label, svgclass="totp-qr-image", lineclass=None,
    )
    return buffer.getvalue().decode("utf-8")


async def _invite(session: AsyncSession, token: str) -> tuple[Invite, Consultant]:
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise _unknown()
    invite = await session.scalar(select(Invite).where(Invite.token_hash == invite_token_hash(token)).with_for_update())
    if invite is None or invite.expires <= utcnow():
        raise _unknown()
    consultant = await session.get(Consultant, invite.username)
    if consultant is None or consultant.status != "invited":
        raise _unknown()
    return invite, consultant


def _unknown() -> NotFound:
    return NotFound("unknown_invite", "this enrolment link is unknown, used or expired; ask for a new one")


async def start(db: Database, settings: Settings, token: str) -> Started:
    async with db.write() as session:
        invite, consultant = await _invite(session, token)
        if invite.totp_sealed is None:
            # Made once per invite: a reload of the page shows the same QR code.
            secret = pyotp.random_base32(32)
            invite.totp_sealed = secretbox.seal(settings.secret_key, TOTP_PURPOSE, secret.encode("ascii"))
            consultant.kdf_ops, consultant.kdf_mem = settings.kdf_ops, settings.kdf_mem
        else:
            secret = secretbox.unseal(settings.secret_key, TOTP_PURPOSE, invite.totp_sealed).decode("ascii")
        uri = pyotp.TOTP(secret).provisioning_uri(name=consultant.username, issuer_name=ISSUER)
        return Started(consultant.username, uri, qr_svg(uri, f"{ISSUER}: {consultant.username}"), consultant.kdf_ops, consultant.kdf_mem)


async def finish(db: Database, settings: Settings, token: str, enrolment: Enrolment, code: str) -> str:
    """Complete the enrolment; returns the username. The token is spent."""
    async with db.write() as session:
        invite, consultant = await _invite(session, token)
        if invite.totp_sealed is None:
            raise BadRequest("enrolment_not_started", "start the enrolment first (POST /api/v1/staff/enroll/start)")
        secret = secretbox.unseal(settings.secret_key, TOTP_PURPOSE, invite.totp_sealed).decode("ascii")
        step = totp_step(secret, code)
        if step is None:
            raise BadRequest("bad_totp", "the code does not match; check the authenticator app and the clock")
        if not usable_public_key(enrolment.pk):
            # Teammates would seal the team key to it: a low-order key makes that box readable by anyone.
            # Raised inside the transaction, so nothing is stored and the invite stays unspent.
            raise BadRequest("bad_pk", "pk is not a usable X25519 public key (all-zero or low order)")
        await complete_enrolment(session, settings.secret_key, consultant.username, enrolment, secret)
        # The confirming code is spent too: it cannot be replayed to log in.
        consultant.totp_last_step = step
        await session.execute(delete(Invite).where(Invite.username == consultant.username))
        audit.record(session, consultant.username, "consultant.enrol")
        await grants.announce_pending(session, consultant.username)  # key holders' open inboxes share now (issue 13)
        return consultant.username
