"""Issue 9's benchmark suite: every row of its table, side by side in one run, written to docs/benchmarks.md.

Run: `ops/bench.sh` (installs wrk if missing, then runs this), or
`.venv/bin/python -m bench.suite [--out docs/benchmarks.md] [--seconds 5] [--rounds 3]`.
Every server it starts listens on a free port on 127.0.0.1 and is stopped at
the end (bench/procs.py); every run is bounded; the whole suite keeps to
`--budget` seconds (default 540) by doing fewer rounds when time runs short.
Exit status: 0 when every budget was met, 1 when one was missed, 2 on a crash
of the suite itself.
"""

import argparse
import datetime as dt
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path

from bench import phases, powload, procs, report, scaleout
from bench.pg import Cluster

ROOT = Path(__file__).resolve().parent.parent
PHASES = [
    ("throughput", phases.http_throughput),
    ("proof of work", powload.pow_throughput),
    ("page weight", phases.page_weight),
    ("first contact", phases.first_contact),
    ("sse", phases.sse),
    ("purge", phases.purge),
    ("inbox", phases.inbox),
    ("purge under load", phases.purge_under_load),
    ("postgresql", scaleout.postgres),
    ("flood", phases.flood),
]


def _run(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (result.stdout or result.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def fsync_ms(directory: Path, count: int = 200) -> float:
    """The cost of one small write + fsync in the bench's directory (the disk SQLite commits to)."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        started = time.perf_counter()
        for _ in range(count):
            os.write(fd, b"x" * 512)
            os.fsync(fd)
        return (time.perf_counter() - started) / count * 1000
    finally:
        os.close(fd)
        path.unlink()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(work: Path, load_before: tuple[float, ...]) -> str:
    commit = _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    packages = ", ".join(f"{p} {_version(p)}" for p in ("aiohttp", "SQLAlchemy", "aiosqlite", "asyncpg", "PyNaCl",
                                                      "orjson", "playwright"))
    return "\n".join([
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; code: commit {commit}"
        f"{' with uncommitted changes in the work tree' if dirty not in ('', 'unknown') else ''}",
        f"- machine: {os.cpu_count()} cores ({_cpu()}), {_memory_gib():.1f} GiB RAM, {platform.platform()}",
        f"- disk: one 512-byte write + fsync in the bench directory costs {fsync_ms(work):.2f} ms",
        f"- load average before the run: {' '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (the machine was shared with other jobs)",
        f"- Python {platform.python_version()}; {packages}",
        f"- {_run(['wrk', '-v'])}; {_run(['/usr/bin/chromium', '--version'])}; {Cluster.version()}; "
        f"SQLite {sqlite3.sqlite_version}",
    ])


INTRO = """\
Written by `ops/bench.sh` (`python -m bench.suite`); do not edit by hand: run it again. Speed is
measured here, never asserted in tests. Every figure below comes from one run on this machine,
side by side with two bare aiohttp baselines on the same Python (issue 9): **bare JSON** (one
handler returning a JSON body the size of `/api/v1/config`) and **durable INSERT** (one handler
doing one aiosqlite INSERT per request in WAL mode with `synchronous=FULL`, the floor for a durable
write on this stack). Each gateway is a fresh `fristed init --demo` deployment on SQLite (WAL,
`synchronous=FULL`), except the PostgreSQL figure. Budgets come from `bench/budgets.toml` (the goals
of issue 9; tightened when a figure beats them, never loosened); a missed budget is marked
**MISS**. The machine has 2 cores shared by wrk, the gateway and the baselines, and during this run
also by other jobs, so single figures move by tens of percent between runs: compare ratios."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per throughput figure, time allowing")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds the whole suite may take")
    parser.add_argument("--only", action="append", choices=[name for name, _ in PHASES], help="run only these parts")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench: wrk is missing (ops/bench.sh installs it: apt-get install -y wrk)", file=sys.stderr)
        return 2
    procs.install()
    load_before = os.getloadavg()
    started = time.monotonic()
    # On the real disk (not a tmpfs), so fsync costs what it costs SQLite in production.
    work = Path(tempfile.mkdtemp(prefix="fristed-bench-", dir="/var/tmp" if Path("/var/tmp").is_dir() else None))
    run = phases.Run(work=work, seconds=args.seconds, rounds=args.rounds, deadline=started + args.budget)
    failures: list[str] = []
    try:
        for name, phase in PHASES:
            if args.only and name not in args.only:
                continue
            if run.left() < 20:
                failures.append(f"{name}: skipped, the suite's {args.budget:.0f} s were used up")
                continue
            phase_started = time.monotonic()
            print(f"bench: {name} …", flush=True)
            try:
                phase(run)
            except Exception as exc:  # one broken part must not lose the others' figures
                failures.append(f"{name}: failed: {exc}")
                traceback.print_exc()
            print(f"bench: {name} done in {time.monotonic() - phase_started:.0f} s", flush=True)
        if run.main is not None:
            run.main.gateway.stop()
        procs.stop_all()
        verdicts = report.judge(report.load_budgets(), run.figures)
        sections = [("Machine and versions", machine(work, load_before))]
        sections += run.sections
        sections.append(("Commands", "\n".join([
            "```", "ops/bench.sh            # = .venv/bin/python -m bench.suite", *run.commands, "```"])))
        if run.settings_changed:
            sections.append(("Bench deployment settings", "A benchmark is one loopback client sending thousands of "
                             "writes a second, which is what the abuse limits of issue 8 refuse; each bench "
                             "deployment's `fristed.toml` therefore has these limits raised to the highest value "
                             "the gateway accepts (costs and sizes stay as `fristed init` writes them):\n\n"
                             + "\n".join(f"- `{c}`" for c in run.settings_changed)))
        if failures:
            sections.append(("What did not run", "\n".join(f"- {f}" for f in failures)))
        took = time.monotonic() - started
        intro = INTRO + f"\n\nThis run took {took / 60:.1f} minutes."
        args.out.write_text(report.render(verdicts, title="Benchmarks", intro=intro, sections=sections))
        missed = [v for v in verdicts if not v.met]
        print(report.budget_table(verdicts))
        print(f"bench: wrote {args.out} in {took:.0f} s; {len(missed)} of {len(verdicts)} budgets missed")
        return 1 if missed or failures else 0
    finally:
        procs.stop_all()
        if args.keep:
            print(f"bench: work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
