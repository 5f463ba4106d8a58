"""The measurements of the suite, one function per part of issue 9's table (bench/suite.py runs them).

Each phase takes the run (`Run`: figures, sections, time left) and adds figures
(keys named in bench/budgets.toml) and a Markdown section. A phase that fails
leaves its figures out, so the report marks them "not measured".
"""

import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench import clients, deploy, procs, seed, wrk
from tests.support import Demo


@dataclass
class Run:
    work: Path
    seconds: float
    rounds: int
    deadline: float
    figures: dict[str, float] = field(default_factory=dict)
    sections: list[tuple[str, str]] = field(default_factory=list)
    settings_changed: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    main: "Main | None" = None
    store: Demo | None = None  # the deployment of the purge, inbox and purge-under-load figures

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def rounds_for(self, cost_per_round: float, reserve: float) -> int:
        """As many rounds (up to `rounds`) as fit in the time left, keeping `reserve` s for later phases."""
        fit = int((self.left() - reserve) // max(cost_per_round, 1))
        return max(1, min(self.rounds, fit))


@dataclass
class Main:
    demo: Demo
    gateway: deploy.Gateway
    data: clients.CitizenData
    bare_json: str
    insert: str


def cell(values: list[float], fmt: str = "{:,.0f}") -> str:
    return " / ".join(fmt.format(v) for v in values)


def _wrk_row(name: str, results: list[wrk.WrkResult], ratio: str) -> str:
    rps = [r.rps for r in results]
    p50 = statistics.median(r.p50_ms for r in results)
    p99 = statistics.median(r.p99_honest_ms for r in results)
    worst = max(r.max_ms for r in results)
    statuses: dict[int, int] = {}
    for r in results:
        for s, n in r.statuses.items():
            statuses[s] = statuses.get(s, 0) + n
    timeouts = sum(r.timeouts for r in results)
    errors = sum(r.socket_errors for r in results)
    other = ", ".join(f"{s}: {n:,}" for s, n in sorted(statuses.items()) if not 200 <= s < 300)
    problems = "; ".join(x for x in (other, f"time-outs: {timeouts}" if timeouts else "",
                                      f"socket errors: {errors}" if errors else "") if x) or "none"
    return (f"| {name} | {statistics.median(rps):,.0f} | {cell(rps)} | {ratio} | {p50:.1f} | {p99:.1f} | {worst:.0f} "
            f"| {problems} |")


# --- 1. HTTP throughput: baselines, config, open, create, reply; RSS under write load ----------------


def start_main(run: Run) -> Main:
    demo, changed = deploy.make(run.work, "main")
    run.settings_changed = changed
    gateway = deploy.serve(demo)
    data = asyncio.run(clients.prepare_citizens(gateway.url, run.work, reply_threads=256))
    json_port, insert_port = procs.free_port(), procs.free_port()
    py = sys.executable
    for argv, port in (([py, "-m", "bench.baselines", "json", "--port", str(json_port), "--size", str(data.config_bytes)], json_port),
                       ([py, "-m", "bench.baselines", "insert", "--port", str(insert_port), "--db",
                         str(run.work / "insert.db")], insert_port)):
        process = procs.start(argv, run.work / f"baseline-{port}.log")
        procs.wait_http(f"http://127.0.0.1:{port}/", process) if argv[3] == "json" else _wait_port(port, process)
    run.main = Main(demo, gateway, data, f"http://127.0.0.1:{json_port}/", f"http://127.0.0.1:{insert_port}/")
    return run.main


def _wait_port(port: int, process: subprocess.Popen) -> None:
    """The INSERT baseline answers POST only: wait until its GET says 405."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the INSERT baseline exited")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the INSERT baseline did not start")


def http_throughput(run: Run) -> None:
    main = run.main or start_main(run)
    g, d = main.gateway.url, main.data
    # Each baseline runs just before the scenarios measured against it, so a burst of noise on the
    # shared machine falls on a pair as often as possible (the ratios pair runs seconds apart).
    scenarios = [
        ("bare JSON", dict(url=main.bare_json)),
        ("GET /api/v1/config", dict(url=g + "/api/v1/config")),
        ("POST /api/v1/threads/open", dict(url=g, mode="post", path="/api/v1/threads/open", data=d.open)),
        ("durable INSERT", dict(url=main.insert, mode="create", path="/", data=d.create)),
        ("POST /api/v1/threads", dict(url=g, mode="create", path="/api/v1/threads", data=d.create)),
        ("POST /api/v1/threads/reply", dict(url=g, mode="post", path="/api/v1/threads/reply", data=d.reply)),
    ]
    writes = {"POST /api/v1/threads", "POST /api/v1/threads/reply"}
    for _name, kwargs in scenarios:  # warm-up, not counted
        wrk.run(seconds=1, **kwargs)
    rounds = run.rounds_for(len(scenarios) * (run.seconds + 1), reserve=300)
    results: dict[str, list[wrk.WrkResult]] = {name: [] for name, _ in scenarios}
    rss: list[float] = []
    for _round in range(rounds):
        # Round-robin, so a burst of noise on the shared machine hits every scenario alike.
        for name, kwargs in scenarios:
            if name in writes:
                with procs.RssSampler(main.gateway.process.pid) as sampler:
                    results[name].append(wrk.run(seconds=run.seconds, **kwargs))
                rss.append(sampler.peak_mib * 1024 * 1024 / 1e6)
            else:
                results[name].append(wrk.run(seconds=run.seconds, **kwargs))
    keys = {"GET /api/v1/config": ("config", "bare JSON"), "POST /api/v1/threads/open": ("open", "bare JSON"),
            "POST /api/v1/threads": ("create", "durable INSERT"), "POST /api/v1/threads/reply": ("reply", "durable INSERT")}
    rows = []
    for name, rs in results.items():
        ratio = ""
        if name in keys:
            key, baseline = keys[name]
            # Each round's ratio pairs runs a few seconds apart, so slow drifts of the shared machine cancel out.
            per_round = [r.rps / b.rps if b.rps else float("nan") for r, b in zip(rs, results[baseline], strict=True)]
            run.figures[f"{key}.ratio"] = statistics.median(per_round)
            run.figures[f"{key}.rps"] = statistics.median(r.rps for r in rs)
            run.figures[f"{key}.p99_ms"] = statistics.median(r.p99_honest_ms for r in rs)
            ratio = f"{run.figures[f'{key}.ratio']:.3f} of {baseline} ({cell(per_round, '{:.3f}')})"
        rows.append(_wrk_row(name, rs, ratio))
    if rss:
        run.figures["rss.peak_mb"] = max(rss)
    run.commands.append(f"# {rounds} rounds, round-robin over the scenarios, after a 1 s warm-up each:")
    for name, kwargs in scenarios:
        env = " ".join(f"BENCH_{k.upper()}={Path(str(v)).name if k == 'data' else v}" for k, v in kwargs.items()
                       if k in ("mode", "path", "data"))
        url = str(kwargs["url"])
        target = ("$BARE_JSON" if url == main.bare_json else "$INSERT" if url == main.insert
                  else "$GATEWAY" + url[len(g):])
        run.commands.append(f"{env + ' ' if env else ''}wrk -t2 -c16 -d{run.seconds:g}s --timeout={wrk.TIMEOUT_S:g}s "
                            f"-s bench/wrk.lua {target}   # {name}")
    run.sections.append(("Throughput (wrk -t2 -c16, loopback)", "\n".join([
        f"Medians of {rounds} rounds of {run.seconds:g} s each. Requests per second count 2xx answers only. "
        "A ratio is the median of the rounds' ratios (each round measures the scenario and its baseline "
        "seconds apart). "
        "Latencies are wrk's (ms), p50/p99 as medians over the rounds, max over all rounds; a round in which "
        f"more than 1 % of the requests timed out (no answer in {wrk.TIMEOUT_S:g} s) counts its p99 as at least "
        "that time-out.",
        "",
        "| scenario | req/s (median) | req/s per round | ratio | p50 ms | p99 ms | max ms | non-2xx, time-outs |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
        *rows,
        "",
        f"- bare JSON answers {d.config_bytes:,} bytes, the size of `/api/v1/config` at the start of the run; the "
        "durable INSERT receives the same bodies as `POST /api/v1/threads` and INSERTs each in its own "
        "transaction (aiosqlite, WAL, `synchronous=FULL`).",
        "- Creations: a new `access_token` per request (made by wrk.lua), 64 citizen keys with one real sealed "
        f"envelope each (about 300 characters of text, envelope version {d.create_version}, as the write page seals "
        f"it); replies cycle over {d.reply_threads} threads made through the API before timing, and opens over "
        f"{d.reply_threads} others of one message each (so no round opens what earlier rounds' replies added), "
        "with version 1 envelopes: a version 2 reply binds the `seq` it will get, which bodies made before timing "
        "cannot know, and the gateway keeps each thread to the version of its first message.",
        f"- For scale: on a quiet 2-core machine of this kind bare JSON does about 21,000–23,000 req/s and the "
        f"durable INSERT about 4,300–5,000 (issue 9, TOOLCHAIN.md); in this run they did "
        f"{statistics.median(r.rps for r in results['bare JSON']):,.0f} and "
        f"{statistics.median(r.rps for r in results['durable INSERT']):,.0f}, so absolute figures here are far "
        "below a quiet machine's and only the ratios carry over.",
        f"- `/api/v1/config` announced `pow.bits` = {d.pow_bits} at the start (0: no proof of work asked).",
        "- The gateway is `fristed serve` as `fristed init --demo` configures it (logging included), except for "
        "the abuse limits listed under \"Bench deployment settings\"; the baselines log nothing.",
        f"- Gateway RSS (process and children, sampled every 0.1 s during the creation and reply runs): peak "
        f"{max(rss, default=0):.1f} MB.",
    ])))


# --- 2. request -> SSE event ------------------------------------------------------------------------


def sse(run: Run) -> None:
    main = run.main or start_main(run)
    demo = main.demo
    staff = asyncio.run(clients.staff_login(main.gateway.url, "demo", demo.passphrase, demo.totp_secret))
    idle, idle_lost = asyncio.run(clients.sse_latencies(main.gateway.url, staff, main.data, probes=40, seconds=15))
    load_seconds = 10.0
    background = wrk.start(main.gateway.url, mode="post", path="/api/v1/threads/reply", data=main.data.reply,
                           seconds=load_seconds)
    try:
        time.sleep(1)
        loaded, load_lost = asyncio.run(clients.sse_latencies(main.gateway.url, staff, main.data, probes=60,
                                                              seconds=load_seconds - 2.5))
    finally:
        load = wrk.finish(background, load_seconds)
    # A probe whose event never came within 5 s counts as 5 s (it is at least that late).
    idle_all, load_all = idle + [5000.0] * idle_lost, loaded + [5000.0] * load_lost
    run.figures["sse.idle_p99_ms"] = clients.percentile(idle_all, 99)
    run.figures["sse.load_p99_ms"] = clients.percentile(load_all, 99)
    run.sections.append(("Request → SSE event", "\n".join([
        "A consultant (the demo one, logged in over HTTP as the login page does) keeps "
        "`GET /api/v1/staff/events` open; a probe creates a thread and waits for its `thread_new` event. "
        "Probes go one at a time. Under load, wrk sends replies (-t2 -c16) meanwhile, each of which also makes "
        "an event for the same inbox.",
        "",
        f"- idle: {clients.summary(idle)}; no event within 5 s: {idle_lost}",
        f"- under reply load: {clients.summary(loaded)}; no event within 5 s: {load_lost}; the load itself: "
        f"{load.rps:,.0f} replies/s, p99 {load.p99_ms:.0f} ms, statuses {load.status_text()}",
    ])))


# --- 3. purge, the staff inbox list, and creations during the scheduled purge -------------------------


def _purge(run: Run, demo: Demo, count: int, tag: str, timeout: float) -> float | None:
    db = demo.data_dir / "fristed.db"
    started = time.monotonic()
    seed.seed_threads(db, count=count, tag=tag, expired=True, audit_every=5)
    seeded = time.monotonic() - started
    try:
        seconds, result = deploy.run_fristed(demo, "purge", timeout=timeout)
    except subprocess.TimeoutExpired:
        run.sections.append((f"Purge of {count:,}", f"`fristed purge` was stopped after {timeout:.0f} s "
                             f"(seeding took {seeded:.1f} s)."))
        return None
    left = seed.count_threads(db, expired=True)
    if result.returncode != 0 or left:
        raise RuntimeError(f"fristed purge failed ({result.returncode}, {left} expired left): {result.stderr[-500:]}")
    run.commands.append(f"fristed purge --data-dir DIR   ({count:,} expired threads seeded in {seeded:.1f} s)")
    return seconds


def _store(run: Run) -> Demo:
    if run.store is None:
        run.store, _changed = deploy.make(run.work, "store")
    return run.store


def purge(run: Run) -> None:
    demo = _store(run)
    lines = []
    small = _purge(run, demo, 10_000, "e1", timeout=min(120, max(20, run.left() - 240)))
    big = _purge(run, demo, 100_000, "e2", timeout=min(150, max(20, run.left() - 200))) if small is not None else None
    if small is not None:
        lines.append(f"- 10,000 expired threads: {small:.2f} s")
    if big is not None:
        lines.append(f"- 100,000 expired threads: {big:.2f} s")
        run.figures["purge.seconds_100k"] = big
        if small:
            run.figures["purge.superlinearity"] = big / (10 * small)
            lines.append(f"- 100,000 took {big / small:.1f}× as long as 10,000 (10× is linear)")
    run.sections.append(("`fristed purge`", "\n".join([
        "Each expired thread is seeded with set-based SQL as the gateway would have left it: one citizen message "
        "(a real sealed envelope, about 1.7 KB), its `envelope_kids` row, a `thread_new` event, and one audit row "
        "naming it for every fifth thread; 10,000 first, then 100,000 into the same deployment. Timed: the whole "
        "`fristed purge` command as an operator runs it (start-up, the purge, the file compaction), on SQLite.",
        "", *lines])))


def inbox(run: Run) -> None:
    demo = _store(run)
    db = demo.data_dir / "fristed.db"
    seed.seed_threads(db, count=10_000, tag="ib", expired=False, replies_every=3)
    gateway = deploy.serve(demo)
    bare = None
    try:
        staff = asyncio.run(clients.staff_login(gateway.url, "demo", demo.passphrase, demo.totp_secret))
        times = asyncio.run(clients.list_times(gateway.url + "/api/v1/staff/threads", staff.headers(), sequential=40,
                                               concurrency=30, each=5))
        port = procs.free_port()
        bare = procs.start([sys.executable, "-m", "bench.baselines", "json", "--port", str(port), "--size",
                            str(times.raw_bytes)], run.work / f"baseline-{port}.log")
        procs.wait_http(f"http://127.0.0.1:{port}/", bare)
        bare_times = asyncio.run(clients.list_times(f"http://127.0.0.1:{port}/", {}, sequential=40, concurrency=30,
                                                    each=5))
    finally:
        gateway.stop()
        if bare is not None:
            procs.stop(bare)
    run.figures["inbox.p95_ms"] = clients.percentile(times.sequential_ms, 95)
    run.figures["inbox.bounded"] = 1.0 if 0 < times.threads_in_answer < 10_000 else 0.0
    run.sections.append(("Staff inbox list, 10,000 threads in the team", "\n".join([
        "`GET /api/v1/staff/threads` as the inbox asks for it (its first page, `Accept-Encoding: gzip, deflate`), "
        "by the demo consultant of a deployment whose team holds 10,000 live threads (every third answered), "
        "against a bare aiohttp handler returning a JSON body of the same raw size, same client, same run.",
        "",
        "| | one client, in a row | 30 clients at once (5 requests each) |",
        "| --- | --- | --- |",
        f"| gateway | {clients.summary(times.sequential_ms)} | {clients.summary(times.concurrent_ms)} |",
        f"| bare handler | {clients.summary(bare_times.sequential_ms)} | {clients.summary(bare_times.concurrent_ms)} |",
        "",
        f"- one answer: {times.threads_in_answer:,} threads, {times.raw_bytes:,} bytes raw, {times.sent_bytes:,} bytes "
        f"as sent with `Accept-Encoding: gzip` (`Content-Encoding: {times.encoding}`); "
        f"a `next` page link: {'yes' if times.paged else 'no'}",
    ])))


def purge_under_load(run: Run) -> None:
    """Issue 9, "Done when": creations (wrk -c16) while the gateway's scheduled purge removes 30,000 threads."""
    demo = _store(run)
    db = demo.data_dir / "fristed.db"
    seed.forget_purge_lease(db)
    seed.seed_threads(db, count=30_000, tag="pl", expired=True, audit_every=5)
    gateway = deploy.serve(demo)
    seconds = 25.0
    try:
        (run.work / "store-data").mkdir(exist_ok=True)
        data = asyncio.run(clients.prepare_citizens(gateway.url, run.work / "store-data", reply_threads=0))
        started = time.monotonic()
        load = wrk.run(gateway.url, mode="create", path="/api/v1/threads", data=data.create, seconds=seconds)
        elapsed = time.monotonic() - started
        # The purge logs its counts when it is done (compaction included): give it up to 30 s more.
        waited = 0.0
        while "fristed.purge: purge:" not in gateway.log_text() and waited < 30:
            time.sleep(0.5)
            waited += 0.5
    finally:
        gateway.stop()
    left = seed.count_threads(db, expired=True)
    purged = "fristed.purge: purge:" in gateway.log_text()
    run.figures["purge_load.server_errors"] = float(load.server_errors)
    run.figures["purge_load.timeouts"] = float(load.timeouts + load.socket_errors)
    run.figures["purge_load.p99_ms"] = load.p99_honest_ms
    run.sections.append(("Creations during the scheduled purge", "\n".join([
        "30,000 expired threads seeded as above, then `fristed serve` started (its scheduled purge runs 10 s after "
        f"start) and wrk sent creations (-t2 -c16) for {seconds:g} s from the moment it answered.",
        "",
        f"- {load.requests:,} answers in {elapsed:.1f} s ({load.rps:,.0f} creations/s): {load.status_text()}; "
        f"time-outs {load.timeouts}, socket errors {load.socket_errors}",
        f"- latency: p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, max {load.max_ms:.0f} ms (over the whole "
        "window, which holds the purge)",
        f"- expired threads left afterwards: {left:,}; the purge logged its counts "
        + (f"{waited:.1f} s after the load ended" if purged else "not within 30 s after the load ended"),
    ])))


# --- 4. first contact in Chromium and page weight --------------------------------------------------------


def first_contact(run: Run) -> None:
    main = run.main or start_main(run)
    argv = [sys.executable, "-m", "bench.first_contact", "--url", main.gateway.url, "--rounds", "3"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    procs.track(process)
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        procs.stop(process, grace=2)
        raise RuntimeError("the browser run took over 120 s") from None
    procs.untrack(process)
    if process.returncode != 0:
        raise RuntimeError(f"first contact failed: {err[-1500:]}")
    times = json.loads(out.strip().splitlines()[-1])
    for key in ("write_load_ms", "send_ms", "open_ms"):
        run.figures[f"browser.{key}"] = statistics.median(times[key])
    run.sections.append(("First contact in Chromium", "\n".join([
        "Debian's headless Chromium through Playwright, a fresh browser context per round (nothing cached), "
        "the deployment's own Argon2id cost (`fristed init` defaults), 3 rounds; medians (each round in brackets):",
        "",
        f"- `/write` loaded: {run.figures['browser.write_load_ms']:.0f} ms ({cell(times['write_load_ms'])})",
        f"- click `#send` → `#pickup-code` visible: {run.figures['browser.send_ms']:.0f} ms ({cell(times['send_ms'])})",
        f"- click `#open` → `#thread` visible: {run.figures['browser.open_ms']:.0f} ms ({cell(times['open_ms'])})",
    ])))


def page_weight(run: Run) -> None:
    from bench import page_weight as pw

    main = run.main or start_main(run)

    def fetch(path: str) -> bytes:
        with urllib.request.urlopen(main.gateway.url + path, timeout=10) as response:
            return response.read()

    weights = [pw.measure(fetch, page) for page in pw.PAGES]
    write = next(w for w in weights if w.page == "/write")
    run.figures["weight.write_own_kib"] = write.total("own")[1] / 1024
    run.sections.append(("Page weight", pw.report(weights) + "\n\nDetails and decisions: docs/page-weight.md."))


# --- 5. 1 vs 2 gateway processes on PostgreSQL: bench/scaleout.py ------------------------------------


# --- 6. the flood figures of issue 8 ----------------------------------------------------------------------


def flood(run: Run) -> None:
    if not (Path(__file__).parent / "flood.py").exists():
        run.sections.append(("Flood (issue 8)", "`bench/flood.py` does not exist yet: no figures."))
        return
    timeout = max(30.0, min(180.0, run.left() - 20))
    process = subprocess.Popen([sys.executable, "-m", "bench.flood"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    procs.track(process)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        procs.stop(process, grace=2)
        out = f"(stopped after {timeout:.0f} s)"
    procs.untrack(process)
    run.commands.append("python -m bench.flood")
    head = ("`python -m bench.flood` (bench/flood.py, issue 8: its own demo deployment, a bounded flood from several "
            f"attacker kinds and one legitimate citizen), exit status {process.returncode}")
    try:
        summary = json.loads(out[out.index("{"):])
    except ValueError:
        run.sections.append(("Flood (issue 8)", f"{head}:\n\n```\n{out.strip()[-6000:]}\n```"))
        return
    run.figures["flood.five_xx"] = float(summary.get("five_xx", float("nan")))
    run.sections.append(("Flood (issue 8)", head + ":\n\n" + flood_lines(summary)))


def flood_lines(summary: dict) -> str:
    """The figures issue 8 asks for, from bench/flood.py's JSON summary (its `bits` timeline left out)."""
    legit, bits, rss = summary.get("legitimate", {}), summary.get("bits", {}), summary.get("rss_kb", {})
    retry = [int(k) for k in summary.get("retry_after", {})]

    def counts(d: dict) -> str:
        return ", ".join(f"{k}: {v:,}" for k, v in sorted(d.items())) or "none"

    kinds = "; ".join(f"{kind} → {counts(st)}" for kind, st in sorted(summary.get("status_by_kind", {}).items()))
    return "\n".join([
        f"- {summary.get('requests', 0):,} requests in {summary.get('seconds', '?')} s; writes offered: "
        f"{summary.get('writes_offered', 0):,} ({counts(summary.get('writes_by_kind', {}))})",
        f"- writes refused, by status: {counts(summary.get('writes_refused_by_status', {}))}; 5xx: "
        f"{summary.get('five_xx', '?')}; unexpected answers: {counts(summary.get('unexpected', {}))}",
        f"- answers by kind: {kinds}",
        f"- legitimate writes during the flood: {legit.get('ok', 0)} succeeded; POST p50 {legit.get('post_p50_ms', '?')} ms, "
        f"p99 {legit.get('post_p99_ms', '?')} ms; solving + POST p50 {legit.get('with_pow_p50_ms', '?')} ms, "
        f"p99 {legit.get('with_pow_p99_ms', '?')} ms",
        f"- `pow.bits`: {bits.get('before', '?')} before, {bits.get('peak', '?')} at the peak, {bits.get('after', '?')} "
        f"after (back {bits.get('fell_back_after_s', '?')} s after the flood)",
        f"- 429 `Retry-After`: {min(retry, default=0)}–{max(retry, default=0)} s",
        f"- gateway peak RSS: {rss.get('peak', 0) * 1024 / 1e6:.1f} MB",
    ])
