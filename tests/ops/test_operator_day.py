"""A whole operator day, every step the real `fristed` command against a real data dir and server.

init → team add → invite (enrolment through the API) → keys rotate → duty set →
a citizen writes → keys rotate again (the old thread stays readable, the new one
is sealed to the new kid) → consultant remove (grants gone, teams rotated) →
purge --dry-run, then purge as of a future date (the thread is gone from every
table, the shredded keys are gone, and so are its bytes) → backup while the
server takes writes → restore into a new data dir and --force over another.
"""

import datetime as dt
import tarfile
import threading
import time
from pathlib import Path

from crypto import b64
from tests.ops.actors import (
    Consultant,
    call,
    database,
    fristed_json,
    invite,
    rows_about,
    thread_id_of,
    write_thread,
)
from tests.support import LiveServer, init_demo, run_fristed


def test_an_operator_day(tmp_path):
    demo = init_demo(tmp_path / "data")
    data = demo.data_dir
    run_fristed("team", "add", "north", "--name", "Team North", data_dir=data)
    alice_url = invite(data, "alice", "north", "demo")
    with LiveServer(data) as server:
        alice = Consultant(server.url, "alice")
        alice.enrol(alice_url)
        assert [c["status"] for c in fristed_json("consultant", "list", data_dir=data)] == ["active", "active"]

        first_kid = the_first_key_is_made_for_north(data)
        run_fristed("duty", "set", "--team", "north", "alice", data_dir=data)
        assert {"team": "north", "on_duty": ["alice"]} in fristed_json("duty", "show", data_dir=data)

        old = write_thread(server.url, "north", "hello before the rotation")
        old_id = thread_id_of(data, old)
        second_kid = rotation_keeps_the_old_thread_readable(server, data, alice, old_id, first_kid)
        new = write_thread(server.url, "north", "hello after the rotation")
        with database(data) as db:
            stored = db.execute("SELECT kid FROM envelope_kids WHERE thread_id = ?", (thread_id_of(data, new),)).fetchall()
        assert stored == [(second_kid,)], "the new thread is not sealed to the new key"

        removing_alice_deletes_her_grants_and_rotates_her_teams(data, alice)

        needles = stored_bytes_of(data, old, old_id)
        purge_deletes_the_expired_threads_for_real(data, [old_id, thread_id_of(data, new)], needles,
                                                   shredded={first_kid, second_kid})

        backup = tmp_path / "backup.tar"
        written_before, written_during = backup_while_the_server_takes_writes(server, data, backup)
    assert not any(needle in backup.read_bytes() for needle in needles), "a purged thread's bytes are in the backup"

    restored = restore_into_a_new_data_dir(tmp_path, backup, written_before, written_during)
    restore_over_an_existing_deployment_only_with_force(tmp_path, backup, restored)
    the_audit_log_tells_what_operators_did_and_nothing_else(data, needles)


def the_first_key_is_made_for_north(data: Path) -> str:
    assert "(none: not offered)" in run_fristed("team", "list", data_dir=data).stdout
    out = run_fristed("keys", "rotate", "--team", "north", data_dir=data).stdout
    assert "sealed to 1 member" in out
    keys = [k for k in fristed_json("keys", "list", data_dir=data) if k["team"] == "north"]
    assert [(k["state"], k["grants"]) for k in keys] == [("current", 1)]
    return keys[0]["kid"]


def rotation_keeps_the_old_thread_readable(server, data: Path, alice: Consultant, old_id: str, first_kid: str) -> str:
    out = run_fristed("keys", "rotate", "--team", "north", data_dir=data).stdout
    assert f"retired {first_kid}" in out
    keys = {k["kid"]: k for k in fristed_json("keys", "list", data_dir=data) if k["team"] == "north"}
    second_kid = next(kid for kid, k in keys.items() if k["state"] == "current")
    assert keys[first_kid]["state"] == "retired" and keys[first_kid]["threads"] == 1
    _, config, _ = call(f"{server.url}/api/v1/config")
    assert {"id": "north", "kid": second_kid}.items() <= next(t for t in config["teams"] if t["id"] == "north").items()
    answer = alice.login()
    assert {(g["kid"], g["current"]) for g in answer["grants"] if g["team"] == "north"} == {
        (first_kid, False), (second_kid, True)}
    assert alice.read_thread(old_id) == ["hello before the rotation"]
    return second_kid


def removing_alice_deletes_her_grants_and_rotates_her_teams(data: Path, alice: Consultant) -> None:
    demo_kid_before = next(k["kid"] for k in fristed_json("keys", "list", data_dir=data)
                           if k["team"] == "demo" and k["state"] == "current")
    out = run_fristed("consultant", "remove", "alice", data_dir=data).stdout
    assert "team demo: rotated" in out
    assert "team north: no enrolled member left" in out
    with database(data) as db:
        assert db.execute("SELECT count(*) FROM grants WHERE username = 'alice'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM staff_sessions WHERE username = 'alice'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM duty WHERE username = 'alice'").fetchone() == (0,)
        assert db.execute("SELECT status, key_blob, pk, salt, auth_hash, totp_sealed FROM consultants "
                          "WHERE username = 'alice'").fetchone() == ("removed", None, None, None, None, None)
    assert alice.get("/api/v1/staff/threads")[0] == 401, "her session survived the removal"
    keys = fristed_json("keys", "list", data_dir=data)
    demo_current = [k for k in keys if k["team"] == "demo" and k["state"] == "current"]
    assert len(demo_current) == 1 and demo_current[0]["kid"] != demo_kid_before
    assert demo_current[0]["grants"] == 1, "the new demo key is sealed to the demo consultant only"
    assert not [k for k in keys if k["team"] == "north" and k["state"] == "current"]
    assert "(none: not offered)" in run_fristed("team", "list", data_dir=data).stdout


def stored_bytes_of(data: Path, written, thread_id: str) -> list[bytes]:
    """Bytes only this thread put on disk: its ciphertext, its citizen key, its lookup; all there now."""
    run_fristed("purge", "--dry-run", data_dir=data)  # harmless; and nothing changes the file
    with database(data) as db:
        lookup, citizen_pk = db.execute("SELECT lookup, citizen_pk FROM threads WHERE id = ?", (thread_id,)).fetchone()
    needles = [written.envelope["ct"].encode(), written.envelope["keys"][0]["box"].encode(), lookup, citizen_pk]
    on_disk = b"".join(p.read_bytes() for p in data.glob("fristed.db*"))
    assert all(needle in on_disk for needle in needles), "the test would prove nothing"
    return needles


def purge_deletes_the_expired_threads_for_real(data: Path, thread_ids: list[str], needles: list[bytes],
                                                shredded: set[str]) -> None:
    today = fristed_json("purge", "--dry-run", data_dir=data)
    assert today["threads"] == 0
    future = (dt.date.today() + dt.timedelta(days=60)).isoformat()
    preview = fristed_json("purge", "--dry-run", "--as-of", future, data_dir=data)
    # North's two keys go with the threads; demo's retired key too, unless the
    # gateway's own scheduled purge has shredded it already (it never used it).
    assert (preview["threads"], preview["messages"]) == (2, 2) and preview["keys_shredded"] in (2, 3)
    assert all(rows_about(data, t)["threads"] == 1 for t in thread_ids), "a dry run deleted something"

    counts = fristed_json("purge", "--as-of", future, data_dir=data)
    assert (counts["threads"], counts["messages"]) == (2, 2) and counts["keys_shredded"] >= 2
    assert not [k for k in fristed_json("keys", "list", data_dir=data) if k["state"] == "retired"]
    for thread_id in thread_ids:
        assert rows_about(data, thread_id) == dict.fromkeys(rows_about(data, thread_id), 0)
    left = {k["kid"] for k in fristed_json("keys", "list", data_dir=data)}
    assert not shredded & left, "a shredded key is still listed"
    with database(data) as db:
        assert not db.execute("SELECT count(*) FROM grants WHERE kid IN (?, ?)", tuple(shredded)).fetchone()[0]
    for path in data.glob("fristed.db*"):
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"a purged thread's bytes are still in {path.name}"


def backup_while_the_server_takes_writes(server, data: Path, backup: Path) -> tuple[int, int]:
    written: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def citizens() -> None:
        # A citizen's pace, not a flood's: well under the proof-of-work and per-client limits.
        try:
            while not stop.is_set():
                write_thread(server.url, "demo", f"message {len(written)}")
                written.append("ok")
                stop.wait(0.1)
        except BaseException as exc:
            failures.append(exc)

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(written) < count and not failures and time.monotonic() < deadline:
            stop.wait(0.05)
        assert not failures and len(written) >= count, f"the writing citizen stopped: {failures}"

    write_thread(server.url, "demo", "before the backup")
    writer = threading.Thread(target=citizens)
    writer.start()
    try:
        wait_for(3)
        before = len(written) + 1
        out = run_fristed("backup", str(backup), data_dir=data).stdout
        during = len(written) + 1
        wait_for(during + 3)
    finally:
        stop.set()
        writer.join()
    assert "backup written to" in out
    assert backup.stat().st_mode & 0o777 == 0o600
    with tarfile.open(backup) as tar:
        assert tar.getnames() == ["MANIFEST.json", "fristed.toml", "secret_key", "fristed.db"]
    return before, during


def restore_into_a_new_data_dir(tmp_path: Path, backup: Path, before: int, during: int) -> Path:
    target = tmp_path / "restored"
    out = run_fristed("restore", str(backup), data_dir=target).stdout
    assert "restored the backup" in out
    assert target.stat().st_mode & 0o777 == 0o700
    with database(target) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        threads = db.execute("SELECT count(*) FROM threads WHERE team_id = 'demo'").fetchone()[0]
        # A consistent snapshot: every thread it holds is whole.
        assert db.execute("SELECT count(*) FROM threads t WHERE NOT EXISTS (SELECT 1 FROM messages m "
                          "WHERE m.thread_id = t.id) OR NOT EXISTS (SELECT 1 FROM envelope_kids e "
                          "WHERE e.thread_id = t.id)").fetchone() == (0,)
    # Every write answered before the backup began is in it; nothing after it ended (one writer: at most
    # one write was in flight, committed but not yet answered, when the count was taken).
    assert before <= threads <= during + 1
    check = run_fristed("check", data_dir=target, check=False)
    assert "FAIL database" not in check.stdout and "FAIL config" not in check.stdout
    with LiveServer(target) as server:
        written = write_thread(server.url, "demo", "to the restored gateway")
        status, opened, _ = call(f"{server.url}/api/v1/threads/open", "POST", {"access_token": b64(written.access_token)})
        assert status == 200 and opened["team"] == "demo"
    return target


def restore_over_an_existing_deployment_only_with_force(tmp_path: Path, backup: Path, restored: Path) -> None:
    other = tmp_path / "other"
    run_fristed("init", data_dir=other)
    secret = (other / "secret_key").read_bytes()
    refused = run_fristed("restore", str(backup), data_dir=other, check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert (other / "secret_key").read_bytes() == secret, "a refused restore touched the data dir"
    run_fristed("restore", str(backup), "--force", data_dir=other)
    assert (other / "secret_key").read_bytes() == (restored / "secret_key").read_bytes()
    assert sorted(p.name for p in other.iterdir() if not p.name.startswith("fristed.db-")) == [
        "fristed.db", "fristed.toml", "secret_key"]
    teams = fristed_json("team", "list", data_dir=other)
    assert [t["id"] for t in teams] == ["demo", "north"]


def the_audit_log_tells_what_operators_did_and_nothing_else(data: Path, needles: list[bytes]) -> None:
    entries = fristed_json("audit", data_dir=data)
    actions = [(e["actor"], e["action"]) for e in entries]
    for expected in [("operator", "init"), ("operator", "team.add"), ("operator", "consultant.invite"),
                     ("alice", "consultant.enrol"), ("operator", "keys.rotate"), ("operator", "duty.set"),
                     ("alice", "staff.login"), ("operator", "consultant.remove"), ("operator", "purge"),
                     ("operator", "backup")]:
        assert expected in actions, f"{expected} is not audited"
    purge = next(e for e in entries if e["action"] == "purge" and "threads=2" in e["detail"])
    assert purge["detail"].startswith("threads=2 messages=2 notes=0 keys_shredded=")
    text = run_fristed("audit", data_dir=data).stdout
    for needle in needles:
        assert needle.decode("latin-1") not in text and b64(needle) not in text
    since = fristed_json("audit", "--since", (dt.date.today() + dt.timedelta(days=1)).isoformat(), data_dir=data)
    assert since == []
