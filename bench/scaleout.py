"""Part 5 of the suite: 1 vs 2 gateway processes on PostgreSQL, and the most 2 could reach here.

On one machine the second process competes with PostgreSQL, wrk and the kernel for
the same cores, so the ratio is bounded by where the CPU goes. Each 1-process round
therefore also measures the CPU every party spends per creation, and the section
reports the ceiling that follows from it: `cores / (CPU per creation)`, as a multiple
of the 1-process figure. A ratio well below its ceiling would point at the gateway
(a lock, a serial step); a ratio near it says the machine is full.
"""

import asyncio
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from bench import clients, deploy, procs, wrk
from bench.pg import Cluster
from bench.phases import Run, cell

# Who spends CPU on a creation, in the order the report names them.
PARTIES = ("gateway", "postgres", "ended children", "kernel")
NAMES = {"gateway": "gateway", "postgres": "PostgreSQL", "ended children": "wrk", "kernel": "kernel threads"}


def _spent(before: dict[str, float], after: dict[str, float], creations: float) -> dict[str, float]:
    """Milliseconds of CPU per creation, by party."""
    return {who: 1000 * (after.get(who, 0.0) - before.get(who, 0.0)) / max(creations, 1) for who in PARTIES}


def postgres(run: Run) -> None:
    # Its own directory beside the work one: user postgres must be able to enter it.
    base = Path(tempfile.mkdtemp(prefix="fristed-bench-pg-", dir=run.work.parent))
    os.chmod(base, 0o755)
    procs.on_exit(lambda: shutil.rmtree(base, ignore_errors=True))
    cluster = Cluster(base / "cluster").start()
    try:
        env = {"FRISTED_DATABASE_URL": cluster.create_database()}
        demo, _changed = deploy.make(run.work, "pg", env=env)
        first, second = deploy.serve(demo, env), deploy.serve(demo, env)
        try:
            (run.work / "pg-data").mkdir(exist_ok=True)
            data = asyncio.run(clients.prepare_citizens(first.url, run.work / "pg-data", reply_threads=0))
            kwargs = dict(mode="create", path="/api/v1/threads", data=data.create, seconds=run.seconds)
            for url in (first.url, second.url):
                wrk.run(url, **{**kwargs, "seconds": 1})
            rounds = run.rounds_for(2 * (run.seconds + 1), reserve=60)
            one, two, costs, costs_two = [], [], [], []
            gateways = {first.process.pid, second.process.pid}
            for _round in range(rounds):
                before = procs.cpu_seconds(gateways)
                result = wrk.run(first.url, **kwargs)
                middle = procs.cpu_seconds(gateways)
                one.append(result.rps)
                costs.append(_spent(before, middle, result.ok))
                pair = [wrk.start(url, threads=1, connections=8, **kwargs) for url in (first.url, second.url)]
                results = [wrk.finish(p, run.seconds) for p in pair]
                two.append(sum(r.rps for r in results))
                costs_two.append(_spent(middle, procs.cpu_seconds(gateways), sum(r.ok for r in results)))
            # Issue 14: an inbox on one process hears of a thread created through another.
            staff = asyncio.run(clients.staff_login(first.url, "demo", demo.passphrase, demo.totp_secret))
            across, lost = asyncio.run(clients.sse_latencies(first.url, staff, data, probes=30, seconds=10,
                                                             write_url=second.url))
        finally:
            first.stop()
            second.stop()
    finally:
        cluster.stop()
    run.figures["pg.ratio"] = statistics.median(two) / statistics.median(one)
    run.figures["pg.sse_across_p99_ms"] = clients.percentile(across + [5000.0] * lost, 99)
    report = _report(run, rounds, one, two, costs, costs_two, across, lost)
    run.sections.append(("1 vs 2 gateway processes on PostgreSQL", report))


def _report(run: Run, rounds: int, one: list[float], two: list[float], costs: list[dict[str, float]],
            costs_two: list[dict[str, float]], across: list[float], lost: int) -> str:
    cores = os.cpu_count() or 1
    cost = {who: statistics.median(c[who] for c in costs) for who in PARTIES}
    cost_two = {who: statistics.median(c[who] for c in costs_two) for who in PARTIES}
    most = 1000 * cores / sum(cost.values())  # creations/s with every core busy on this work
    run.figures["pg.ceiling"] = most / statistics.median(one)
    busy = statistics.median(two) * sum(cost_two.values()) / 1000 / cores

    def spent(by: dict[str, float]) -> str:
        return ", ".join(f"{by[who]:.2f} ms {NAMES[who]}" for who in PARTIES)

    return "\n".join([
        f"A throwaway {Cluster.version()} cluster with its durable defaults (`fsync=on`, `synchronous_commit=on`) "
        "on the same machine, two `fristed serve` processes on it. Creations (`POST /api/v1/threads`): one process "
        "with wrk -t2 -c16, then both at once, each with wrk -t1 -c8 (the same 16 connections in all). "
        f"{rounds} rounds of {run.seconds:g} s.",
        "",
        f"- 1 process: {statistics.median(one):,.0f} creations/s ({cell(one)})",
        f"- 2 processes: {statistics.median(two):,.0f} creations/s ({cell(two)})",
        f"- ratio: {run.figures['pg.ratio']:.2f}× (on {cores} cores shared by wrk, PostgreSQL and both gateways)",
        f"- CPU per creation with 1 process (medians, from /proc): {spent(cost)}. With all {cores} cores busy on "
        f"that, this machine makes at most {most:,.0f} creations/s: **{run.figures['pg.ceiling']:.2f}× the "
        "1-process figure is the ceiling for any number of processes here** (docs/write-path.md).",
        f"- CPU per creation with 2 processes: {spent(cost_two)}; the {cores} cores were "
        f"{100 * min(busy, 1):.0f} % busy with this work.",
        f"- request → SSE event across processes (stream on one process, creations one at a time through the "
        f"other, idle): {clients.summary(across)}; no event within 5 s: {lost}",
    ])
