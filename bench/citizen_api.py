"""Citizen API throughput against the real `fristed serve`, as ratios to a baseline.

Run: `ops/bench.sh` (or `.venv/bin/python -m bench.citizen_api`). Prints one
line per scenario: requests/s, mean latency, ratio to the baseline (a static
file served by the same process in the same run) and the budget from
bench/budgets.toml. Exits 1 when a budget is exceeded.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from crypto import b64, derive_citizen, generate_code, seal_envelope, unb64
from tests.support import LiveServer, init_demo

BUDGETS = tomllib.loads(Path(__file__).with_name("budgets.toml").read_text())["scenarios"]


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000


async def measure(name: str, make_request: Callable[[int], Awaitable[int]], count: int, concurrency: int) -> Result:
    latencies: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for index in queue:
            started = time.perf_counter()
            status = await make_request(index)
            latencies.append(time.perf_counter() - started)
            if status >= 400:
                raise SystemExit(f"{name}: request {index} answered {status}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, count, time.perf_counter() - started, latencies)


async def run(url: str, count: int, concurrency: int) -> list[Result]:
    async with aiohttp.ClientSession(url) as http:
        config = await (await http.get("/api/v1/config")).json()
        team = config["teams"][0]
        team_pk, salt = unb64(team["pk"]), unb64(config["code_salt"])
        # Everything a browser would compute is prepared before timing starts.
        citizens = []
        for _ in range(count):
            keys = derive_citizen(generate_code(), salt, config["kdf"]["ops"], config["kdf"]["mem"])
            citizens.append((keys, seal_envelope({"text": "x" * 300}, [team_pk, keys.pk])))

        async def status_of(response: Awaitable[aiohttp.ClientResponse]) -> int:
            async with await response as answer:
                await answer.read()
                return answer.status

        def create(i: int) -> Awaitable[int]:
            keys, envelope = citizens[i]
            return status_of(http.post("/api/v1/threads", json={
                "team": team["id"], "citizen_pk": b64(keys.pk), "access_token": b64(keys.access_token), "envelope": envelope}))

        def open_(i: int) -> Awaitable[int]:
            return status_of(http.post("/api/v1/threads/open", json={"access_token": b64(citizens[i][0].access_token)}))

        def reply(i: int) -> Awaitable[int]:
            keys, envelope = citizens[i]
            return status_of(http.post("/api/v1/threads/reply", json={"access_token": b64(keys.access_token), "envelope": envelope}))

        await measure("warm-up", lambda i: status_of(http.get("/static/favicon.svg")), 50, concurrency)
        return [
            await measure("baseline", lambda i: status_of(http.get("/static/favicon.svg")), count, concurrency),
            await measure("config", lambda i: status_of(http.get("/api/v1/config")), count, concurrency),
            await measure("thread_create", create, count, concurrency),
            await measure("thread_open", open_, count, concurrency),
            await measure("thread_reply", reply, count, concurrency),
        ]


def report(results: list[Result]) -> bool:
    baseline = results[0]
    ok = True
    print(f"{'scenario':<14} {'req/s':>8} {'mean ms':>8} {'ratio':>6} {'budget':>7}")
    for result in results:
        ratio = result.mean_ms / baseline.mean_ms
        budget = BUDGETS.get(result.name, {}).get("max_ratio")
        verdict = "" if budget is None else ("ok" if ratio <= budget else "OVER")
        ok = ok and verdict != "OVER"
        print(f"{result.name:<14} {result.rate:>8.0f} {result.mean_ms:>8.2f} {ratio:>6.2f} {budget or '':>7} {verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=400, help="requests per scenario")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", help="benchmark against this database instead of a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fristed-bench-") as tmp:
        env = {"FRISTED_DATABASE_URL": args.database_url} if args.database_url else None
        demo = init_demo(Path(tmp) / "data", env=env)
        with LiveServer(demo.data_dir, {**(env or {}), "FRISTED_LOG_LEVEL": "WARNING"}) as server:
            results = asyncio.run(run(server.url, args.count, args.concurrency))
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
