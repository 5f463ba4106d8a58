"""`fristed check`: is this deployment safe to run? One line per check, non-zero exit on any FAIL."""

import argparse
import ctypes
import ctypes.util
import datetime as dt
import os
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from gateway.db import Database, is_sqlite, utcnow
from gateway.migrate import current_revision, head_revision
from gateway.models import AuditEntry, Message, Thread
from gateway.settings import CONFIG_NAME, SECRET_NAME, Settings, SettingsError, load_settings, resolve_data_dir
from ops import dbfile
from ops.backup import SMTP_PASSWORD_NAME
from ops.common import CliError

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# Argon2id below libsodium's "interactive" memory or two passes is too cheap for pickup codes.
MIN_KDF_OPS, MIN_KDF_MEM = 2, 64 * 1024 * 1024
# TOTP accepts one 30-second step either side (INTERFACES.md).
MAX_SKEW = dt.timedelta(seconds=30)
TIME_ERROR = 5  # adjtimex(2): the kernel's clock is not synchronised


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    reason: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.reason}"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "check", parents=[common], help="check the deployment (exit 1 on any failure)",
        description="Check the deployment: file and directory permissions, secrets, public_url (https unless "
        "loopback), retention, Argon2id cost, the database (reachable, migrated, secure_delete on SQLite), SMTP "
        "(if configured) and the clock (TOTP). Prints `PASS name: reason` or `FAIL name: reason` per check and "
        "exits 1 if any check fails.")
    parser.set_defaults(func=run)


def private(path: Path, what: str) -> tuple[bool, str]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return False, f"{what} {path} is mode {mode:04o}: others can read it (chmod go-rwx)"
    return True, f"{what} is mode {mode:04o}"


def check_data_dir(data_dir: Path) -> Result:
    if not data_dir.is_dir():
        return Result("data_dir", False, f"{data_dir} is not a directory")
    ok, reason = private(data_dir, "the data dir")
    return Result("data_dir", ok, reason)


def check_files(data_dir: Path) -> list[Result]:
    results = []
    config = data_dir / CONFIG_NAME
    if not config.is_file():
        results.append(Result("config_file", False, f"{config} is missing"))
    else:
        results.append(Result("config_file", *private(config, CONFIG_NAME)))
    secret = data_dir / SECRET_NAME
    if not secret.is_file():
        results.append(Result("secret_key", False, f"{secret} is missing"))
    elif secret.stat().st_size != 32:
        results.append(Result("secret_key", False, f"{secret} does not hold 32 bytes"))
    else:
        results.append(Result("secret_key", *private(secret, SECRET_NAME)))
    password = data_dir / SMTP_PASSWORD_NAME
    if password.exists():
        results.append(Result("smtp_password", *private(password, SMTP_PASSWORD_NAME)))
    return results


def check_settings(settings: Settings) -> list[Result]:
    results = []
    url = urlsplit(settings.public_url)
    if url.scheme == "https":
        results.append(Result("public_url", True, f"{settings.public_url} is https (TLS at the reverse proxy)"))
    elif url.hostname in LOOPBACK:
        results.append(Result("public_url", True, f"{settings.public_url} is loopback only (http allowed there)"))
    else:
        results.append(Result("public_url", False, f"{settings.public_url} is not https: serve through a TLS proxy "
                              "and set public_url to the https address"))
    config = tomllib.loads((settings.data_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    if "retention_days" not in config:
        results.append(Result("retention", False, "retention_days is not set in fristed.toml: decide how long an "
                              "inactive thread is kept"))
    else:
        results.append(Result("retention", True, f"threads expire after {settings.retention_days} days of "
                              f"inactivity, audit entries after {settings.audit_retention_days} days, purged every "
                              f"{settings.purge_interval_minutes} minutes"))
    if settings.kdf_ops < MIN_KDF_OPS or settings.kdf_mem < MIN_KDF_MEM:
        results.append(Result("kdf", False, f"Argon2id ops={settings.kdf_ops} mem={settings.kdf_mem} is too cheap: "
                              f"use at least ops={MIN_KDF_OPS} mem={MIN_KDF_MEM}"))
    else:
        results.append(Result("kdf", True, f"Argon2id ops={settings.kdf_ops} mem={settings.kdf_mem}"))
    if settings.smtp.username and not settings.smtp.password:
        results.append(Result("smtp_password", False, f"smtp.username is set but {SMTP_PASSWORD_NAME} is missing"))
    if settings.smtp.username and not (settings.smtp.tls or settings.smtp.starttls):
        results.append(Result("smtp_tls", False, "smtp.username is set but neither smtp.tls nor smtp.starttls: the "
                              "password would cross the network in clear"))
    elif settings.smtp.enabled:
        results.append(Result("smtp_tls", True, "TLS to the SMTP server" if settings.smtp.tls or settings.smtp.starttls
                              else "no login is sent (no TLS configured)"))
    return results


def _missing_sqlite_file(settings: Settings) -> str | None:
    if not is_sqlite(settings.database_url):
        return None
    path = make_url(settings.database_url).database
    return path if path and not Path(path).exists() else None


async def check_database(settings: Settings) -> list[Result]:
    results = []
    missing = _missing_sqlite_file(settings)
    if missing:
        # Connecting would create an empty file.
        return [Result("database", False, f"{missing} is missing: restore a backup or run `fristed init`")]
    # Before any connection: the gateway's own would switch the file to WAL and set secure_delete.
    file_results = sqlite_file_checks(settings)
    db = Database.connect(settings.database_url)
    try:
        try:
            revision = await current_revision(db)
        except Exception as exc:
            return [Result("database", False, f"unreachable: {_first_line(exc)}")]
        head = head_revision()
        if revision != head:
            results.append(Result("database", False, f"schema {revision or 'missing'}, expected {head}: run "
                                  "`fristed serve` once (it migrates) or restore a matching backup"))
        else:
            results.append(Result("database", True, f"reachable, schema {revision} is current"))
        results += file_results + _storage(db, settings)
        results.append(await _clock(db, revision == head))
    finally:
        await db.close()
    return results


def sqlite_file_checks(settings: Settings) -> list[Result]:
    """The journal mode and what deletes left behind, read from the file itself (ops.dbfile)."""
    if not is_sqlite(settings.database_url):
        return []
    path = Path(str(make_url(settings.database_url).database))
    try:
        state = dbfile.read_state(path)
    except (OSError, ValueError) as exc:
        return [Result("journal", False, f"{path.name} cannot be read: {exc}")]
    results = [Result("journal", state.wal, "the file is in WAL mode (durable, readers never block the writer)"
                      if state.wal else f"{path.name} is not in WAL mode (its header says a rollback journal): "
                      "stop every gateway and run `fristed serve` once, which switches it back")]
    dirty = state.dirty_free_pages + state.dirty_free_blocks
    if dirty:
        results.append(Result("secure_delete", False, f"{state.dirty_free_pages} free page(s) and "
                              f"{state.dirty_free_blocks} free block(s) still hold deleted data: something deleted "
                              "rows without secure_delete; stop the gateway and run `sqlite3 fristed.db VACUUM`"))
    else:
        results.append(Result("secure_delete", True, f"every free page ({state.free_pages}) and free block in the "
                              "file is zeroed: deletes overwrote what they removed (secure_delete is per "
                              "connection; every gateway connection turns it on)"))
    return results


def _storage(db: Database, settings: Settings) -> list[Result]:
    if not is_sqlite(settings.database_url):
        return [Result("secure_delete", True, "PostgreSQL: DELETE does not overwrite rows; the purge runs VACUUM, "
                       "which only marks their space reusable. Keep the cluster on an encrypted disk and read "
                       "SECURITY.md \"Deleted data on PostgreSQL\"")]
    path = Path(str(db.engine.url.database))
    files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    loose = [p.name for p in files if stat.S_IMODE(p.stat().st_mode) & 0o077]
    return [Result("database_files", not loose, f"{', '.join(loose)} readable by others (chmod go-rwx)"
                   if loose else f"{', '.join(p.name for p in files)} private")]


def _ntp_note() -> str:
    """What the kernel says about clock synchronisation (informative: a container may not see the host's)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        state = libc.adjtimex(ctypes.create_string_buffer(512))
    except (OSError, AttributeError):
        return "NTP state unknown"
    if state == TIME_ERROR:
        return "the kernel does not report NTP synchronisation: make sure chrony or systemd-timesyncd runs"
    return "the kernel reports NTP synchronisation" if state >= 0 else "NTP state unknown"


async def _clock(db: Database, migrated: bool) -> Result:
    now = utcnow()
    if now.year < 2024:
        return Result("clock", False, f"the clock says {now:%Y-%m-%d}: set the time, TOTP codes will not match")
    if db.engine.dialect.name == "postgresql":
        async with db.engine.connect() as conn:
            server = (await conn.execute(text("SELECT timezone('UTC', now())"))).scalar_one()
        skew = abs(utcnow() - server)
        if skew > MAX_SKEW:
            return Result("clock", False, f"{skew.total_seconds():.0f} s off the database server's clock: TOTP "
                          "needs both within 30 s of true time")
    if migrated:
        async with db.read() as session:
            newest = max(
                (t for t in [await session.scalar(select(func.max(AuditEntry.at))),
                             await session.scalar(select(func.max(Thread.last_activity))),
                             await session.scalar(select(func.max(Message.at)))] if t is not None),
                default=None,
            )
        if newest is not None and now < newest - dt.timedelta(minutes=2):
            return Result("clock", False, f"the clock ({now:%Y-%m-%dT%H:%MZ}) is behind the newest stored time "
                          f"({newest:%Y-%m-%dT%H:%MZ}): it went backwards, TOTP codes will not match")
    return Result("clock", True, f"{now:%Y-%m-%dT%H:%M:%SZ} UTC, not behind stored times; {_ntp_note()}")


async def check_smtp(settings: Settings) -> Result:
    import aiosmtplib  # here, like static_problem below: other commands start without it (ops/commands/serve.py)

    smtp = settings.smtp
    if not smtp.enabled:
        return Result("smtp", True, "not configured: no e-mail notifications")
    client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, use_tls=smtp.tls, start_tls=smtp.starttls, timeout=10)
    try:
        await client.connect()
        if smtp.username:
            await client.login(smtp.username, smtp.password)
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Result("smtp", False, f"{smtp.host}:{smtp.port} does not work: {_first_line(exc)}")
    return Result("smtp", True, f"{smtp.host}:{smtp.port} answers" + (" and accepts the login" if smtp.username else ""))


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    message = str(orig or exc) or type(exc).__name__
    return message.splitlines()[0]


async def run(args: argparse.Namespace) -> int:
    from gateway.health import static_problem  # imports aiohttp: see ops/commands/serve.py

    data_dir = resolve_data_dir(getattr(args, "data_dir", None), os.environ)
    if not data_dir.exists():
        raise CliError(f"{data_dir} does not exist: run `fristed init --data-dir {data_dir}` first")
    results = [check_data_dir(data_dir), *check_files(data_dir)]
    problem = static_problem()  # the same test `fristed serve` refuses to start on
    results.append(Result("static", problem is None, problem or "the browser libraries (libsodium) are installed"))
    settings: Settings | None = None
    try:
        settings = load_settings(data_dir)
        results.append(Result("config", True, f"{CONFIG_NAME} loads"))
    except SettingsError as exc:
        results.append(Result("config", False, str(exc)))
    if settings is None:
        results.append(Result("database", False, "not checked: the configuration does not load"))
    else:
        results += check_settings(settings)
        results += await check_database(settings)
        results.append(await check_smtp(settings))
    sys.stdout.write("".join(result.line() + "\n" for result in results))
    failed = [r.name for r in results if not r.ok]
    if failed:
        sys.stdout.write(f"{len(failed)} check(s) failed: {', '.join(failed)}\n")
        return 1
    sys.stdout.write(f"all {len(results)} checks passed\n")
    return 0
