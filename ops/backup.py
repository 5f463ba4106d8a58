"""Backups: one file holding a consistent database copy, `fristed.toml` and the secrets.

Format, version 1: an uncompressed POSIX tar (pipe it through any encryption
or compression tool you like), mode 0600, whose members are

    MANIFEST.json    first: {"format": "fristed-backup", "version": 1, "created": "<RFC 3339>",
                     "database": "sqlite" | "postgresql", "schema": "<Alembic revision>",
                     "files": {"<name>": "<sha256 hex>", ...}}
    fristed.toml     the configuration
    secret_key       the server secret (opens the TOTP seeds at rest)
    smtp_password    only when the deployment has one
    fristed.db       SQLite: a copy made with the online backup API (one
                     consistent snapshot while the gateway keeps writing),
                     switched to journal_mode=DELETE so it is one file
    database.pgdump  PostgreSQL: `pg_dump --format=custom`

Nothing else is accepted on restore: no other names, no links, no
directories. Restore checks every checksum, `PRAGMA integrity_check` (or
`pg_restore --list`) and the configuration before it touches the data dir,
stages the files beside the old ones and swaps them in with renames, putting
the old files back if anything fails.

A backup holds ciphertext only (messages stay end-to-end encrypted), but with
the secret_key it is sensitive: keep it as carefully as the server.
"""

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.db import is_sqlite
from gateway.settings import CONFIG_NAME, DATABASE_NAME, SECRET_NAME, Settings, default_database_url
from ops.common import CliError

FORMAT = "fristed-backup"
VERSION = 1
MANIFEST = "MANIFEST.json"
PGDUMP_NAME = "database.pgdump"
SMTP_PASSWORD_NAME = "smtp_password"  # noqa: S105 (a file name)
CONFIG_FILES = (CONFIG_NAME, SECRET_NAME, SMTP_PASSWORD_NAME)
ALLOWED = {*CONFIG_FILES, DATABASE_NAME, PGDUMP_NAME}
# What a data dir's deployment consists of: moved aside as a whole on restore.
SQLITE_SIDE_FILES = (f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm", f"{DATABASE_NAME}-journal")
MAX_MANIFEST = 64 * 1024


@dataclass(frozen=True)
class Manifest:
    created: str
    database: str
    schema: str | None
    files: dict[str, str]

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"format": FORMAT, "version": VERSION, "created": self.created, "database": self.database,
             "schema": self.schema, "files": self.files},
            indent=2, sort_keys=True,
        ).encode("utf-8")

    @classmethod
    def parse(cls, raw: bytes) -> "Manifest":
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise CliError("the backup's manifest is not valid JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CliError("this file is not a Fristed backup (no fristed-backup manifest)")
        if data.get("version") != VERSION:
            raise CliError(f"backup format version {data.get('version')!r} is not supported (this fristed reads {VERSION})")
        files = data.get("files")
        if (
            data.get("database") not in ("sqlite", "postgresql")
            or not isinstance(files, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
        ):
            raise CliError("the backup's manifest is malformed")
        return cls(str(data.get("created")), data["database"], data.get("schema"), files)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def staging(parent: Path, prefix: str) -> Iterator[Path]:
    """A private scratch directory beside the target (same file system, so renames are atomic)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- PostgreSQL client tools --------------------------------------------------------------


def pg_tool(name: str) -> str:
    """`pg_dump`/`pg_restore`: from FRISTED_PG_BIN, the PATH, or the newest /usr/lib/postgresql/*/bin."""
    if os.environ.get("FRISTED_PG_BIN"):
        candidate = Path(os.environ["FRISTED_PG_BIN"]) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if versions:
        return str(versions[-1])
    raise CliError(f"{name} not found: install the PostgreSQL client (apt-get install postgresql-client) or set FRISTED_PG_BIN")


def pg_connection_args(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq options (-h -p -U -d) and environment (PGPASSWORD) for a SQLAlchemy PostgreSQL URL."""
    parsed = make_url(url)

    def query(name: str) -> str | None:
        value = parsed.query.get(name)
        if isinstance(value, tuple):
            value = value[0] if value else None
        return value

    args: list[str] = []
    host = parsed.host or query("host")
    port = parsed.port or query("port")
    if host:
        args += ["-h", str(host)]
    if port:
        args += ["-p", str(port)]
    if parsed.username:
        args += ["-U", parsed.username]
    if not parsed.database:
        raise CliError("FRISTED_DATABASE_URL names no database")
    args += ["-d", parsed.database]
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return args, env


def _run_pg(argv: list[str], env: Mapping[str, str], what: str) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, env=dict(env), timeout=3600)
    except OSError as exc:
        raise CliError(f"{what} could not run: {exc.strerror or exc}") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise CliError(f"{what} failed: {lines[-1] if lines else f'exit status {result.returncode}'}")
    return result.stdout


# --- backup --------------------------------------------------------------------------------


def copy_sqlite(source: str, target: Path) -> str | None:
    """A consistent copy through SQLite's online backup API; returns its schema revision.

    One step (`pages=-1`) reads one snapshot; in WAL mode the gateway keeps
    writing meanwhile. The copy is switched to a rollback journal so it is a
    single self-contained file, compacted, and checked before it goes into the archive.
    """
    if not Path(source).exists():
        raise CliError(f"the database {source} does not exist")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.execute("PRAGMA secure_delete=ON")
        dst.execute("VACUUM")  # no free pages in the copy: nothing deleted travels with it
        check_sqlite_connection(dst)
        return _sqlite_revision(dst)
    finally:
        dst.close()
        src.close()


def _sqlite_revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def check_sqlite_connection(connection: sqlite3.Connection) -> None:
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise CliError(f"the database copy is damaged: {exc}") from None
    if [tuple(r) for r in rows] != [("ok",)]:
        raise CliError(f"the database copy is damaged: {rows[0][0]}")


def dump_postgres(url: str, target: Path) -> None:
    args, env = pg_connection_args(url)
    _run_pg([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(target), *args],
            env, "pg_dump")


def check_target(target: Path, *, force: bool) -> Path:
    """Where the backup goes: an absolute path in an existing directory, not overwritten without `force`."""
    target = target.expanduser().absolute()
    if target.is_dir():
        raise CliError(f"{target} is a directory: name the backup file")
    if not target.parent.is_dir():
        raise CliError(f"the directory {target.parent} does not exist")
    if target.exists() and not force:
        raise CliError(f"{target} exists: choose another name or pass --force to overwrite it")
    return target


def create_backup(settings: Settings, target: Path, *, force: bool, schema: str | None) -> Manifest:
    """Write the archive to `target` (0600), atomically: a partial file is never left under its name."""
    target = check_target(target, force=force)
    with staging(target.parent, ".fristed-backup-") as stage:
        files: dict[str, str] = {}
        for name in CONFIG_FILES:
            source = settings.data_dir / name
            if source.exists():
                shutil.copyfile(source, stage / name)
                files[name] = sha256(stage / name)
        if is_sqlite(settings.database_url):
            database = "sqlite"
            path = make_url(settings.database_url).database
            if not path or path == ":memory:":
                raise CliError("an in-memory database cannot be backed up")
            schema = copy_sqlite(path, stage / DATABASE_NAME)
            files[DATABASE_NAME] = sha256(stage / DATABASE_NAME)
        else:
            database = "postgresql"
            dump_postgres(settings.database_url, stage / PGDUMP_NAME)
            files[PGDUMP_NAME] = sha256(stage / PGDUMP_NAME)
        created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        manifest = Manifest(created, database, schema, files)
        partial = stage / "archive.tar"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            raw = manifest.to_bytes()
            tar.addfile(_info(MANIFEST, len(raw)), io.BytesIO(raw))
            for name in files:
                with (stage / name).open("rb") as member:
                    tar.addfile(_info(name, (stage / name).stat().st_size), member)
        _fsync(partial)
        # Read it back: what we hand the operator must restore.
        with staging(target.parent, ".fristed-verify-") as scratch:
            read_archive(partial, scratch)
        if force:
            os.replace(partial, target)
        else:
            try:
                os.link(partial, target)  # fails, rather than overwrites, if someone created it meanwhile
            except FileExistsError:
                raise CliError(f"{target} exists: choose another name or pass --force to overwrite it") from None
    return manifest


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
    return info


# --- restore -------------------------------------------------------------------------------


def read_archive(archive: Path, stage: Path, database: str | None = None) -> Manifest:
    """Extract a backup into `stage` and verify it completely (names, checksums, database).

    With `database` ("sqlite" or "postgresql"), a backup of the other kind is refused first.
    """
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            if not members or members[0].name != MANIFEST or not members[0].isfile() or members[0].size > MAX_MANIFEST:
                raise CliError(f"{archive} is not a Fristed backup (no manifest first)")
            names = [m.name for m in members[1:]]
            if len(set(names)) != len(names):
                raise CliError("the backup holds a file twice")
            manifest_file = tar.extractfile(members[0])
            assert manifest_file is not None
            manifest = Manifest.parse(manifest_file.read())
            if database and manifest.database != database:
                raise CliError(f"this backup holds a {manifest.database} database but the target is {database}: "
                               "set or unset FRISTED_DATABASE_URL to match")
            for member in members[1:]:
                if member.name not in ALLOWED or not member.isfile():
                    raise CliError(f"the backup holds an unexpected entry {member.name!r}")
                source = tar.extractfile(member)
                assert source is not None
                fd = os.open(stage / member.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    shutil.copyfileobj(source, handle)
    except (tarfile.TarError, EOFError) as exc:
        raise CliError(f"{archive} is not a readable backup: {exc}") from None
    if set(names) != set(manifest.files):
        raise CliError("the backup's files do not match its manifest")
    for name, expected in manifest.files.items():
        if sha256(stage / name) != expected:
            raise CliError(f"checksum mismatch for {name}: the backup is damaged")
    required = {CONFIG_NAME, SECRET_NAME, DATABASE_NAME if manifest.database == "sqlite" else PGDUMP_NAME}
    if missing := sorted(required - set(names)):
        raise CliError(f"the backup lacks {missing[0]}")
    if manifest.database == "sqlite":
        connection = sqlite3.connect(stage / DATABASE_NAME)
        try:
            check_sqlite_connection(connection)
            if _sqlite_revision(connection) is None:
                raise CliError("the backup's database has no schema")
        finally:
            connection.close()
    else:
        _run_pg([pg_tool("pg_restore"), "--list", str(stage / PGDUMP_NAME)], os.environ, "pg_restore --list")
    return manifest


def is_occupied(data_dir: Path) -> bool:
    """Whether a data dir holds anything (an empty or missing one may be restored into)."""
    return data_dir.exists() and any(entry.name != "lost+found" for entry in data_dir.iterdir())


@dataclass
class Swap:
    """Files renamed into a data dir, with the old ones kept aside until `commit`."""

    data_dir: Path
    aside: Path
    placed: list[str]
    moved: list[str]

    def rollback(self) -> None:
        """Put the old files back where they were."""
        for name in self.placed:
            with suppress(FileNotFoundError):
                os.unlink(self.data_dir / name)
        for name in self.moved:
            os.replace(self.aside / name, self.data_dir / name)
        shutil.rmtree(self.aside, ignore_errors=True)

    def commit(self) -> None:
        shutil.rmtree(self.aside, ignore_errors=True)


def swap_in(stage: Path, data_dir: Path, names: list[str], replaced: tuple[str, ...]) -> Swap:
    """Move the deployment's current files aside, then rename the staged ones in."""
    aside = Path(tempfile.mkdtemp(prefix=".fristed-replaced-", dir=data_dir))
    swap = Swap(data_dir, aside, [], [])
    try:
        for name in replaced:
            if (data_dir / name).exists():
                os.replace(data_dir / name, aside / name)
                swap.moved.append(name)
        for name in names:
            _fsync(stage / name)
            os.replace(stage / name, data_dir / name)
            swap.placed.append(name)
    except BaseException:
        swap.rollback()
        raise
    return swap


def restore_postgres(url: str, dump: Path) -> None:
    """Replace the database's contents in one transaction: a failure leaves it as it was."""
    args, env = pg_connection_args(url)
    _run_pg([pg_tool("pg_restore"), "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
             "--no-owner", "--no-privileges", *args, str(dump)], env, "pg_restore")


def restore_target_url(data_dir: Path, env: Mapping[str, str]) -> str:
    url = env.get("FRISTED_DATABASE_URL") or default_database_url(data_dir)
    if is_sqlite(url) and make_url(url).database != str((data_dir / DATABASE_NAME).resolve()):
        raise CliError(f"restore puts a SQLite database at {data_dir / DATABASE_NAME}; unset FRISTED_DATABASE_URL")
    return url
