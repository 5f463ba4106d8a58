"""Creations with proof of work solved ahead (issue 9's "proof of work turned off or solved ahead").

The main throughput phase measures creations with proof of work off (`pow.bits` 0). Here a
deployment asks for proof of work at every pace (`floor_bits` = `flood_bits` = `max_bits`), and
each request carries its own challenge, fetched and solved before the timed run: what a tester
with a solver does, and what the gateway costs per paid write (the challenge's MAC, the
spent-challenge read, one Argon2id try, the claim in the write's own transaction). Its ratio is
to the durable INSERT measured in the same round, like the main figure's.

It is reported without a budget: at the cost `fristed init` writes (1 MiB a try) one try on the
server takes longer than the durable INSERT's whole request, so the figure follows the Argon2id
cost issue 8 chose for floods, not the write path (docs/write-path.md, "Proof of work").
"""

import asyncio
import json
import math
import os
import statistics
import timeit
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from bench import clients, deploy, wrk
from bench.deploy import set_key
from bench.phases import Run, cell, start_main
from crypto import b64, unb64
from crypto import pow as work

# Bits asked: the server checks one Argon2id try whatever the bits, so a few keep solving cheap.
BITS = 1
# Bodies made per round: the no-pow creation rate of this run (more than creations with proof of
# work can reach) times the round's seconds, with room.
ROOM = 1.1
FALLBACK_RATE = 2000.0


def _solve(args: tuple[str, int, int, int]) -> str:
    challenge, bits, ops, mem = args
    return b64(work.solve(unb64(challenge), bits, ops, mem))


async def _challenges(url: str, count: int) -> list[dict]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        gate = asyncio.Semaphore(16)

        async def one() -> dict:
            async with gate, http.post(url + "/api/v1/challenge", json={}) as answer:
                answer.raise_for_status()
                return await answer.json()  # type: ignore[no-any-return]

        return await asyncio.gather(*(one() for _ in range(count)))


def _bodies(url: str, templates: list[str], prefix: str, count: int, path: Path) -> tuple[int, int]:
    """`count` creation bodies in `path`, each with a challenge of its own and its solution (wrk mode
    create: the first line is the token prefix, each body keeps @@TOKEN@@ for wrk.lua to fill); the
    Argon2id cost (ops, mem) the challenges were issued with."""
    issued = asyncio.run(_challenges(url, count))
    # Threads, not processes: Argon2id runs in libsodium without the GIL, and forking this
    # process (which has threads of its own) could hang a child on a lock held at the fork.
    with ThreadPoolExecutor(2) as pool:
        nonces = list(pool.map(_solve, [(c["challenge"], c["bits"], c["ops"], c["mem"]) for c in issued]))
    lines = [prefix]
    for i, (challenge, nonce) in enumerate(zip(issued, nonces, strict=True)):
        body = json.loads(templates[i % len(templates)])
        body["pow"] = {"challenge": challenge["challenge"], "nonce": nonce}
        lines.append(json.dumps(body, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")
    return int(issued[0]["ops"]), int(issued[0]["mem"])


def pow_throughput(run: Run) -> None:
    main = run.main or start_main(run)
    demo, _changed = deploy.make(run.work, "pow")
    toml = demo.data_dir / "fristed.toml"
    text = toml.read_text()
    for key in ("floor_bits", "flood_bits", "max_bits"):
        text = set_key(text, "pow", key, str(BITS))
    toml.write_text(text)
    gateway = deploy.serve(demo)
    try:
        (run.work / "pow-data").mkdir(exist_ok=True)
        data = asyncio.run(clients.prepare_citizens(gateway.url, run.work / "pow-data", reply_threads=0))
        prefix, *templates = data.create.read_text().splitlines()
        per_round = math.ceil(run.figures.get("create.rps", FALLBACK_RATE) * ROOM * run.seconds)
        rounds = run.rounds_for(3 * run.seconds + 10, reserve=200)
        paid, baseline, results = [], [], []
        ops, mem = 0, 0
        for round_ in range(rounds):
            bodies = run.work / f"pow-bodies-{round_}.txt"
            ops, mem = _bodies(gateway.url, templates, prefix, per_round, bodies)
            baseline.append(wrk.run(main.insert, mode="create", path="/", data=main.data.create, seconds=run.seconds))
            # One wrk thread, so the bodies go out in order and no challenge is sent twice.
            result = wrk.run(gateway.url, mode="create", path="/api/v1/threads", data=bodies, seconds=run.seconds,
                             threads=1)
            results.append(result)
            paid.append(result.rps / baseline[-1].rps if baseline[-1].rps else float("nan"))
    finally:
        gateway.stop()
    challenge = os.urandom(work.CHALLENGE_BYTES)
    try_ms = 1000 * min(timeit.repeat(lambda: work.digest(os.urandom(8), challenge, ops, mem), number=20, repeat=3)) / 20
    run.figures["create_pow.ratio"] = statistics.median(paid)
    run.figures["create_pow.p99_ms"] = statistics.median(r.p99_honest_ms for r in results)
    statuses: dict[int, int] = {}
    for r in results:
        for status, n in r.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    run.commands.append(f"# proof of work solved ahead: {per_round:,} challenges per round fetched and solved, then")
    run.commands.append(f"BENCH_MODE=create BENCH_PATH=/api/v1/threads BENCH_DATA=pow-bodies-N.txt wrk -t1 -c16 "
                        f"-d{run.seconds:g}s --timeout={wrk.TIMEOUT_S:g}s -s bench/wrk.lua $POW_GATEWAY")
    run.sections.append(("Creations with proof of work solved ahead", "\n".join([
        f"A second deployment asks for {BITS} bit{'s' if BITS != 1 else ''} of proof of work at every pace "
        "(`[pow]` `floor_bits`, "
        f"`flood_bits` and `max_bits` = {BITS}; the Argon2id cost of a try as `fristed init --demo` writes it). "
        f"Before each of {rounds} rounds, {per_round:,} challenges are fetched from `POST /api/v1/challenge` and "
        "solved; each creation then carries its own (`pow: {challenge, nonce}`), sent in order by one wrk thread "
        "with 16 connections. The durable INSERT is measured just before, in the same round.",
        "",
        f"- creations with proof of work: {cell([r.rps for r in results])} req/s per round; "
        f"{cell(paid, '{:.3f}')} of the durable INSERT ({cell([b.rps for b in baseline])} req/s)",
        f"- p99 {cell([r.p99_honest_ms for r in results], '{:.1f}')} ms; answers: "
        + ", ".join(f"{status}: {n:,}" for status, n in sorted(statuses.items())),
        f"- one Argon2id try at this deployment's cost (ops {ops}, mem {mem:,} bytes) takes {try_ms:.2f} ms here, "
        "in this process; the server makes one per paid write (tries of at most 64 KiB run on the event loop, "
        "costlier ones on the gate's two threads). No budget: see docs/write-path.md, \"Proof of work\".",
    ])))

