"""`fristed audit` prints what it holds with control characters escaped: one entry, one line."""

import asyncio

from gateway.db import Database
from gateway.services import audit
from gateway.settings import load_settings
from tests.support import Demo, run_fristed


def test_an_audit_entry_with_control_characters_prints_as_one_escaped_line(demo: Demo) -> None:
    async def write() -> None:
        db = Database.connect(load_settings(demo.data_dir, {}).database_url)
        try:
            async with db.write() as session:
                audit.record(session, "operator", "test.controls", "a\n2026-01-01T00:00Z  forged  line\r\x1b[2J\u202eb")
        finally:
            await db.close()

    asyncio.run(write())
    out = run_fristed("audit", "--limit", "1", data_dir=demo.data_dir).stdout
    lines = out.splitlines()
    assert len(lines) == 2, out  # the header and the one entry
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert "a\\x0a2026-01-01T00:00Z  forged  line\\x0d\\x1b[2J\\u202eb" in lines[1]
