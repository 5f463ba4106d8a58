"""One-time claims (`gateway.db.claim_once`: a proof-of-work challenge, a no-script ticket): of any
number of writes that claim the same bucket, from one process or two, exactly one that commits
gets it; a claim whose write rolls back is no claim. Both databases."""

import asyncio

from gateway.db import Database, claim_once
from gateway.errors import Conflict
from gateway.migrate import upgrade
from gateway.writer import Tx


def claiming(bucket: str, fail: bool = False):
    def unit(tx: Tx) -> bool:
        won = claim_once(tx.conn, bucket, 600)
        if fail:
            raise Conflict("refused", "this write does not commit")
        return won

    return unit


async def test_exactly_one_of_many_concurrent_claims_wins_across_two_processes(database_url):
    first, second = Database.connect(database_url), Database.connect(database_url)
    try:
        await upgrade(first)
        outcomes = await asyncio.gather(*(db.transact(claiming("once:a")) for db in (first, second) * 6))
        assert sorted(outcomes) == [False] * 11 + [True]
        # Another bucket is its own claim.
        assert await second.transact(claiming("once:b")) is True
    finally:
        await first.close()
        await second.close()


async def test_a_claim_whose_write_rolls_back_leaves_the_bucket_free(db):
    await upgrade(db)
    outcomes = await asyncio.gather(db.transact(claiming("once:c", fail=True)), return_exceptions=True)
    assert isinstance(outcomes[0], Conflict)
    assert await db.transact(claiming("once:c")) is True
    assert await db.transact(claiming("once:c")) is False
