"""The per-process bound on server-side Argon2id."""

import asyncio
import threading

import pytest

from gateway.errors import RateLimited
from gateway.kdfgate import KdfGate


async def test_at_most_the_allowed_number_run_at_once_and_the_overflow_is_429():
    gate = KdfGate(concurrent=2, queue=3, seconds_each=0.5)
    release = threading.Event()
    running, peak = 0, 0
    lock = threading.Lock()

    def derive(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(5)
        with lock:
            running -= 1
        return n

    admitted = [asyncio.create_task(gate.run(derive, n)) for n in range(5)]  # 2 running + 3 waiting
    await asyncio.sleep(0.05)
    with pytest.raises(RateLimited) as refused:
        await gate.run(derive, 99)
    assert refused.value.headers["Retry-After"] == str(refused.value.retry_after) and refused.value.retry_after >= 1
    release.set()
    assert sorted(await asyncio.gather(*admitted)) == [0, 1, 2, 3, 4]
    assert peak == 2
    assert await gate.run(derive, 7) == 7  # drained: admitted again
