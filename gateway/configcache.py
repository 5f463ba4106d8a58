"""`GET /api/v1/config` from a per-process cache (issue 9).

The answer changes only when an operator rotates keys, adds a team or changes
the Argon2id cost, and with the proof-of-work demand. The data is read again
at most every `REFRESH_SECONDS`, so every process sees a change within a
second without a query per request; the body is kept as bytes per `bits`.
"""

import asyncio
import json
import time

from sqlalchemy import Connection

from crypto import b64
from gateway.db import Database
from gateway.services.meta import config_data
from gateway.settings import Settings

REFRESH_SECONDS = 0.5


class ConfigCache:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._data: dict | None = None
        self._bodies: dict[int, bytes] = {}
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def body(self, bits: int) -> bytes:
        if self._data is None or time.monotonic() - self._read_at > REFRESH_SECONDS:
            async with self._lock:
                if self._data is None or time.monotonic() - self._read_at > REFRESH_SECONDS:
                    data = await self._db.read_core(self._load)
                    if data != self._data:
                        self._data, self._bodies = data, {}
                    self._read_at = time.monotonic()
        body = self._bodies.get(bits)
        if body is None:
            assert self._data is not None
            body = json.dumps({**self._data, "pow": {"bits": bits}}, separators=(",", ":")).encode()
            self._bodies[bits] = body
        return body

    def _load(self, conn: Connection) -> dict:
        s = self._settings
        salt, previous, teams = config_data(conn, s.kdf_ops, s.kdf_mem, s.retention_days)
        return {
            "code_salt": b64(salt),
            "kdf": {"ops": s.kdf_ops, "mem": s.kdf_mem},
            # Costs of earlier codes, newest first: a pickup that finds nothing tries them in turn.
            "kdf_previous": [{"ops": k.ops, "mem": k.mem} for k in previous],
            "teams": [{"id": team_id, "name": name, "kid": kid, "pk": b64(pk)} for team_id, name, kid, pk in teams],
            "limits": {
                "max_text_chars": s.max_text_chars,
                "max_envelope_bytes": s.max_envelope_bytes,
                "max_messages_per_thread": s.max_messages_per_thread,
            },
        }
