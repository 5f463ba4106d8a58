"""`fristed backup` and `fristed restore`: verified before anything is touched, old data intact on failure.

The backup taken while the server writes, and restores that serve again, are in
test_operator_day.py; here: PostgreSQL, and every way a restore must refuse.
"""

import datetime as dt
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from ops import backup as archive
from ops.common import CliError
from tests.ops.actors import fristed_json, write_thread
from tests.support import LiveServer, init_demo, run_fristed

FUTURE = (dt.date.today() + dt.timedelta(days=400)).isoformat()


def fingerprint(data_dir: Path) -> dict[str, str]:
    """Every file of a data dir and its hash: to show nothing changed."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data_dir.iterdir()) if p.is_file()}


def build_archive(path: Path, files: dict[str, bytes], manifest: dict | None = None) -> Path:
    """A backup file made by hand (the test's own, to break it in one place at a time)."""
    manifest = manifest or {"format": "fristed-backup", "version": 1, "created": "2026-11-22T00:00:00Z",
                            "database": "sqlite", "schema": "0001",
                            "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
    with tarfile.open(path, "w") as tar:
        for name, data in [("MANIFEST.json", json.dumps(manifest).encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A demo deployment and a backup of it."""
    base = Path(tmp_path_factory.mktemp("backup"))
    demo = init_demo(base / "data")
    run_fristed("team", "add", "north", "--name", "North", data_dir=demo.data_dir)
    target = base / "fristed.tar"
    run_fristed("backup", str(target), data_dir=demo.data_dir)
    return demo.data_dir, target


def test_a_backup_is_private_complete_and_never_overwritten_by_accident(made, tmp_path):
    data, target = made
    assert target.stat().st_mode & 0o777 == 0o600
    content = members(target)
    manifest = json.loads(content.pop("MANIFEST.json"))
    assert manifest["database"] == "sqlite" and manifest["format"] == "fristed-backup"
    assert sorted(content) == ["fristed.db", "fristed.toml", "secret_key"]
    assert content["secret_key"] == (data / "secret_key").read_bytes()
    assert all(hashlib.sha256(content[n]).hexdigest() == h for n, h in manifest["files"].items())
    again = run_fristed("backup", str(target), data_dir=data, check=False)
    assert again.returncode == 1 and "--force" in again.stderr
    assert members(target)["fristed.db"] == content["fristed.db"]
    (data / "smtp_password").write_text("hunter2\n")
    os.chmod(data / "smtp_password", 0o600)
    try:
        run_fristed("backup", str(tmp_path / "with-password.tar"), data_dir=data)
    finally:
        (data / "smtp_password").unlink()
    assert members(tmp_path / "with-password.tar")["smtp_password"] == b"hunter2\n"


def test_a_restore_refuses_a_non_empty_data_dir_without_force(made, tmp_path):
    _, target = made
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    refused = run_fristed("restore", str(target), data_dir=occupied, check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("fristed: error: ") and "--force" in refused.stderr
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    run_fristed("restore", str(target), data_dir=empty)
    assert [t["id"] for t in fristed_json("team", "list", data_dir=empty)] == ["demo", "north"]


def broken_archives(good: dict[str, bytes]):
    """Each a backup wrong in exactly one way, with what the refusal says."""
    flipped = bytearray(good["fristed.db"])
    flipped[len(flipped) // 2] ^= 0xFF
    garbage_db = b"SQLite format 3\x00" + bytes(4096)
    manifest = json.loads(good["MANIFEST.json"])
    files = {k: v for k, v in good.items() if k != "MANIFEST.json"}
    yield "checksum", "checksum mismatch", {**files, "fristed.db": bytes(flipped)}, manifest
    yield "integrity", "damaged", {**files, "fristed.db": garbage_db}, None
    yield "config", "cannot be read", {**files, "fristed.toml": b"retention_days = = 3"}, None
    yield "setting", "retention_days", {**files, "fristed.toml": b"retention_days = 0\n"}, None
    yield "traversal", "unexpected entry", {**files, "../evil": b"x"}, None
    yield "missing secret", "lacks secret_key", {k: v for k, v in files.items() if k != "secret_key"}, None
    yield "version", "not supported", files, {**manifest, "version": 99}
    yield "postgres", "postgresql database", files, {**manifest, "database": "postgresql"}


def test_a_broken_backup_is_refused_before_anything_is_touched(made, tmp_path):
    data, target = made
    before = fingerprint(data)
    good = members(target)
    for name, message, files, manifest in broken_archives(good):
        broken = build_archive(tmp_path / f"{name}.tar", files, manifest)
        result = run_fristed("restore", str(broken), "--force", data_dir=data, check=False)
        assert result.returncode == 1, name
        assert result.stderr.startswith("fristed: error: ") and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr
        assert fingerprint(data) == before, f"a refused restore ({name}) changed the data dir"
        if name == "integrity":
            fresh = tmp_path / "fresh"
            assert run_fristed("restore", str(broken), data_dir=fresh, check=False).returncode == 1
            assert not fresh.exists(), "a failed restore into a new dir left it behind"
    not_a_tar = tmp_path / "not-a-backup.tar"
    not_a_tar.write_bytes(b"hello" * 100)
    result = run_fristed("restore", str(not_a_tar), "--force", data_dir=data, check=False)
    assert result.returncode == 1 and "not a readable backup" in result.stderr
    assert fingerprint(data) == before


def test_a_swap_that_fails_halfway_puts_the_old_files_back(tmp_path):
    data, stage = tmp_path / "data", tmp_path / "stage"
    data.mkdir()
    stage.mkdir()
    for name in ("fristed.toml", "secret_key", "fristed.db"):
        (data / name).write_text(f"old {name}")
    (stage / "fristed.toml").write_text("new")
    with pytest.raises(FileNotFoundError):
        # secret_key was never staged: the second rename fails.
        archive.swap_in(stage, data, ["fristed.toml", "secret_key", "fristed.db"], (*archive.CONFIG_FILES, "fristed.db"))
    assert {p.name: p.read_text() for p in data.iterdir()} == {
        "fristed.toml": "old fristed.toml", "secret_key": "old secret_key", "fristed.db": "old fristed.db"}


def test_restore_needs_a_file_and_a_matching_database(tmp_path):
    with pytest.raises(CliError, match="unset FRISTED_DATABASE_URL"):
        archive.restore_target_url(tmp_path, {"FRISTED_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"})
    assert archive.restore_target_url(tmp_path, {}).endswith("/fristed.db")


@pytest.mark.postgres
def test_backup_restore_and_purge_on_postgresql(postgres, tmp_path):
    env = {"FRISTED_DATABASE_URL": postgres.create_database()}
    demo = init_demo(tmp_path / "data", env=env)
    data = demo.data_dir
    with LiveServer(data, env) as server:
        for n in range(3):
            write_thread(server.url, "demo", f"message {n}")
        target = tmp_path / "pg.tar"
        run_fristed("backup", str(target), data_dir=data, env=env)
    assert sorted(members(target)) == ["MANIFEST.json", "database.pgdump", "fristed.toml", "secret_key"]
    assert json.loads(members(target)["MANIFEST.json"])["database"] == "postgresql"

    # Into a new data dir and a new, empty database.
    new_env = {"FRISTED_DATABASE_URL": postgres.create_database()}
    run_fristed("restore", str(target), data_dir=tmp_path / "restored", env=new_env)
    assert fristed_json("purge", "--dry-run", "--as-of", FUTURE, data_dir=tmp_path / "restored", env=new_env)["threads"] == 3
    assert run_fristed("check", data_dir=tmp_path / "restored", env=new_env, check=False).stdout.count("FAIL database") == 0

    # Over the original, which has changed since: only with --force, and then it is the backup again.
    run_fristed("team", "add", "late", "--name", "Late", data_dir=data, env=env)
    refused = run_fristed("restore", str(target), data_dir=tmp_path / "elsewhere", env=env, check=False)
    assert refused.returncode == 1 and "PostgreSQL database is not empty" in refused.stderr
    run_fristed("restore", str(target), "--force", data_dir=data, env=env)
    assert [t["id"] for t in fristed_json("team", "list", data_dir=data, env=env)] == ["demo"]

    # A damaged dump is refused and the database keeps what it had.
    content = members(target)
    dump = bytearray(content["database.pgdump"])
    del dump[len(dump) // 2:]
    manifest = json.loads(content["MANIFEST.json"])
    manifest["files"]["database.pgdump"] = hashlib.sha256(bytes(dump)).hexdigest()
    broken = build_archive(tmp_path / "broken.tar", {**{k: v for k, v in content.items() if k != "MANIFEST.json"},
                                                     "database.pgdump": bytes(dump)}, manifest)
    failed = run_fristed("restore", str(broken), "--force", data_dir=data, env=env, check=False)
    assert failed.returncode == 1 and failed.stderr.startswith("fristed: error: pg_restore")
    assert fristed_json("purge", "--dry-run", "--as-of", FUTURE, data_dir=data, env=env)["threads"] == 3

    # Purge on PostgreSQL: rows gone for real, keys shredded.
    counts = fristed_json("purge", "--as-of", FUTURE, data_dir=data, env=env)
    assert (counts["threads"], counts["messages"]) == (3, 3)
    assert fristed_json("purge", "--dry-run", "--as-of", FUTURE, data_dir=data, env=env)["threads"] == 0
