"""The embedded SQLite database is durable and overwrites what it deletes."""

from gateway.db import Database


async def test_every_connection_runs_wal_full_sync_secure_delete_and_foreign_keys(tmp_path):
    db = Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    try:
        for open_session in (db.read, db.write):
            async with open_session() as session:
                conn = await session.connection()
                pragmas = {
                    name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                    for name in ("journal_mode", "synchronous", "secure_delete", "foreign_keys")
                }
                assert pragmas == {"journal_mode": "wal", "synchronous": 2, "secure_delete": 1, "foreign_keys": 1}
    finally:
        await db.close()
