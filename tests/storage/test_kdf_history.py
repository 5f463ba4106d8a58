"""The Argon2id costs citizen codes were made under (INTERFACES.md: a new cost applies to new threads)."""

import datetime as dt

from gateway.migrate import upgrade
from gateway.services import meta


async def previous(db, ops, mem, retention_days=30):
    async with db.read() as session:
        return [(k.ops, k.mem) for k in await meta.previous_kdf(session, ops, mem, retention_days)]


async def test_earlier_costs_are_published_newest_first_without_the_current_one(db):
    await upgrade(db)
    assert await previous(db, 3, 64 << 20) == []
    await meta.record_kdf(db, 3, 64 << 20)
    await meta.record_kdf(db, 3, 64 << 20)  # a restart with the same cost changes nothing
    assert await previous(db, 3, 64 << 20) == []
    await meta.record_kdf(db, 4, 128 << 20)
    await meta.record_kdf(db, 5, 128 << 20)
    assert await previous(db, 5, 128 << 20) == [(4, 128 << 20), (3, 64 << 20)]
    await meta.record_kdf(db, 3, 64 << 20)  # back to an old cost: it is current again, not previous
    assert await previous(db, 3, 64 << 20) == [(5, 128 << 20), (4, 128 << 20)]


async def test_a_cost_is_forgotten_once_every_thread_made_under_it_has_expired(db, monkeypatch):
    await upgrade(db)
    await meta.record_kdf(db, 3, 64 << 20)
    await meta.record_kdf(db, 4, 128 << 20)
    later = dt.datetime.now() + dt.timedelta(days=32)
    monkeypatch.setattr(meta, "utcnow", lambda: later)
    assert await previous(db, 4, 128 << 20, retention_days=30) == []
    assert await previous(db, 4, 128 << 20, retention_days=60) == [(3, 64 << 20)]
