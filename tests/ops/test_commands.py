"""Every `fristed` command: what people and scripts read, and one clear line for every error.

Errors: exit non-zero, exactly one line on stderr beginning `fristed: error:`,
never a traceback (INTERFACES.md). The error cases run concurrently once per
module, each against a deployment they must leave as it was.
"""

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.ops.actors import database, fristed_json
from tests.support import init_demo, run_fristed

UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"

# (id, arguments, which data dir: "demo" | "broken" | "missing" | None, expected words in the error)
ERRORS = [
    ("init-again", ["init"], "demo", "already initialised"),
    ("serve-bad-port", ["serve", "--port", "70000"], "demo", "--port must be"),
    ("team-add-bad-id", ["team", "add", "Not An Id", "--name", "X"], "demo", "team id is 1-64 characters"),
    ("team-add-duplicate", ["team", "add", "demo", "--name", "Again"], "demo", "already exists"),
    ("team-add-blank-name", ["team", "add", "blank", "--name", "  "], "demo", "team name"),
    ("team-add-no-name", ["team", "add", "noname"], "demo", "--name"),
    ("team-list-missing-dir", ["team", "list"], "missing", "fristed init"),
    ("team-no-action", ["team"], None, "required"),
    ("consultant-invite-unknown-team", ["consultant", "invite", "bob", "--team", "nowhere"], "demo", "no team nowhere"),
    ("consultant-invite-no-team", ["consultant", "invite", "bob"], "demo", "--team"),
    ("consultant-invite-bad-email", ["consultant", "invite", "bob", "--team", "demo", "--email", "bob"], "demo",
     "not an e-mail address"),
    ("consultant-invite-bad-name", ["consultant", "invite", "Bob Smith", "--team", "demo"], "demo", "username"),
    ("consultant-invite-existing", ["consultant", "invite", "demo", "--team", "demo"], "demo", "already exists"),
    ("consultant-remove-unknown", ["consultant", "remove", "nobody"], "demo", "no consultant nobody"),
    ("consultant-list-no-data-dir", ["consultant", "list"], None, "no data directory"),
    ("consultant-list-broken-config", ["consultant", "list"], "broken", "cannot be read"),
    ("duty-set-not-a-member", ["duty", "set", "--team", "empty", "demo"], "demo", "not a member of team empty"),
    ("duty-set-unknown-team", ["duty", "set", "--team", "nowhere", "demo"], "demo", "no team nowhere"),
    ("duty-set-nobody-and-user", ["duty", "set", "--team", "demo", "demo", "--nobody"], "demo", "not allowed with"),
    ("duty-show-missing-dir", ["duty", "show"], "missing", "fristed init"),
    ("keys-rotate-unknown-team", ["keys", "rotate", "--team", "nowhere"], "demo", "no team nowhere"),
    ("keys-rotate-no-member", ["keys", "rotate", "--team", "empty"], "demo", "no enrolled member"),
    ("keys-rotate-which", ["keys", "rotate"], "demo", "--team --all"),
    ("keys-list-unreachable-db", ["keys", "list"], "unreachable", "Connect call failed"),
    ("purge-bad-date", ["purge", "--as-of", "tomorrow"], "demo", "not a date"),
    ("purge-impossible-date", ["purge", "--as-of", "2026-02-30"], "demo", "not a date"),
    ("backup-existing-file", ["backup", "{existing}"], "demo", "exists"),
    ("backup-missing-dir", ["backup", "/nonexistent/dir/fristed.tar"], "demo", "does not exist"),
    ("backup-to-a-directory", ["backup", "/tmp"], "demo", "is a directory"),
    ("restore-missing-file", ["restore", "/nonexistent/fristed.tar"], "demo", "is not a file"),
    ("restore-not-a-backup", ["restore", "{existing}"], "fresh", "not a readable backup"),
    ("check-missing-dir", ["check"], "missing", "does not exist"),
    ("audit-bad-since", ["audit", "--since", "last week"], "demo", "not a date"),
    ("audit-bad-limit", ["audit", "--limit", "0"], "demo", "--limit"),
    ("unknown-command", ["bogus"], None, "invalid choice"),
]


@pytest.fixture(scope="module")
def deployments(tmp_path_factory):
    base = Path(tmp_path_factory.mktemp("errors"))
    demo = init_demo(base / "demo")
    run_fristed("team", "add", "empty", "--name", "Nobody Here", data_dir=demo.data_dir)
    broken = base / "broken"
    run_fristed("init", data_dir=broken)
    (broken / "fristed.toml").write_text("retention_days = [\n")
    existing = base / "existing.tar"
    existing.write_text("not a backup")
    return {"demo": demo.data_dir, "broken": broken, "missing": base / "missing", "fresh": base / "fresh",
            "unreachable": demo.data_dir, None: None, "existing": existing}


def snapshot(data_dir: Path) -> dict:
    with database(data_dir) as db:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("teams", "consultants", "memberships", "invites", "team_keys", "grants", "duty", "audit")}


@pytest.fixture(scope="module")
def error_runs(deployments):
    """Every error case, run concurrently; the demo deployment's rows before and after."""
    before = snapshot(deployments["demo"])

    def run(case):
        name, args, where, _ = case
        args = [a.replace("{existing}", str(deployments["existing"])) for a in args]
        env = {"FRISTED_DATABASE_URL": UNREACHABLE} if where == "unreachable" else None
        return name, run_fristed(*args, data_dir=deployments[where], env=env, check=False)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(run, ERRORS))
    return results, before, snapshot(deployments["demo"])


@pytest.mark.parametrize(("name", "args", "where", "expected"), ERRORS, ids=[e[0] for e in ERRORS])
def test_every_error_is_one_line_on_stderr_and_a_non_zero_exit(error_runs, name, args, where, expected):
    result = error_runs[0][name]
    assert result.returncode != 0
    assert result.stderr.startswith("fristed: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    assert expected in result.stderr


def test_failed_commands_change_nothing(error_runs, deployments):
    _, before, after = error_runs
    assert before == after
    assert not deployments["fresh"].exists()


def test_listings_are_tables_for_people_and_json_for_scripts(deployments):
    data = deployments["demo"]
    teams = fristed_json("team", "list", data_dir=data)
    assert [(t["id"], t["active_members"], t["on_duty"], t["offered"]) for t in teams] == [
        ("demo", 1, ["demo"], True), ("empty", 0, [], False)]
    table = run_fristed("team", "list", data_dir=data).stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "MEMBERS", "CURRENT", "KEY", "ON", "DUTY"]
    assert table[1].startswith("demo") and "(none: not offered)" in table[2]

    consultants = fristed_json("consultant", "list", data_dir=data)
    assert [(c["username"], c["status"], c["teams"]) for c in consultants] == [("demo", "active", ["demo"])]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", consultants[0]["kid"])
    assert run_fristed("consultant", "list", data_dir=data).stdout.startswith("USER ")

    assert fristed_json("duty", "show", data_dir=data) == [{"team": "demo", "on_duty": ["demo"]},
                                                           {"team": "empty", "on_duty": []}]
    assert "(nobody: all members notified)" in run_fristed("duty", "show", data_dir=data).stdout
    keys = fristed_json("keys", "list", data_dir=data)
    assert [(k["team"], k["state"], k["grants"]) for k in keys] == [("demo", "current", 1)]
    audit = fristed_json("audit", "--limit", "2", data_dir=data)
    assert len(audit) == 2 and set(audit[0]) == {"at", "actor", "action", "detail"}


def test_an_invitation_prints_the_enrolment_url_alone_on_the_last_line(demo):
    run_fristed("team", "add", "north", "--name", "North", data_dir=demo.data_dir)
    out = run_fristed("consultant", "invite", "bob", "--team", "north", "--team", "demo", data_dir=demo.data_dir).stdout
    assert re.fullmatch(r"http://127\.0\.0\.1:8080/staff/enroll#[A-Za-z0-9_-]{32}", out.splitlines()[-1])
    data = fristed_json("consultant", "invite", "carol", "--team", "north", "--email", "carol@example.org",
                        data_dir=demo.data_dir)
    assert data["teams"] == ["north"] and data["url"].startswith("http://127.0.0.1:8080/staff/enroll#")
    with database(demo.data_dir) as db:
        assert db.execute("SELECT email FROM consultants WHERE username = 'carol'").fetchone() == ("carol@example.org",)
        stored = b"".join(row[0] for row in db.execute("SELECT token_hash FROM invites"))
    assert data["url"].split("#")[1].encode() not in stored, "the token is stored only as a hash"
    # Removing someone who never enrolled cancels the invitation; they held no key, so nothing rotates.
    out = run_fristed("consultant", "remove", "bob", data_dir=demo.data_dir).stdout
    assert "removed consultant bob" in out and "rotated" not in out
    statuses = {c["username"]: c["status"] for c in fristed_json("consultant", "list", data_dir=demo.data_dir)}
    assert statuses == {"bob": "removed", "carol": "invited", "demo": "active"}
    again = run_fristed("consultant", "remove", "bob", data_dir=demo.data_dir, check=False)
    assert again.returncode == 1 and "already removed" in again.stderr
    # The name can be invited again.
    run_fristed("consultant", "invite", "bob", "--team", "north", data_dir=demo.data_dir)


def test_duty_moves_to_one_consultant_or_to_nobody(demo):
    run_fristed("duty", "set", "--team", "demo", "--nobody", data_dir=demo.data_dir)
    assert fristed_json("duty", "show", data_dir=demo.data_dir) == [{"team": "demo", "on_duty": []}]
    out = run_fristed("duty", "set", "--team", "demo", "demo", data_dir=demo.data_dir).stdout
    assert out == "demo is on duty for team demo\n"
    assert fristed_json("duty", "show", data_dir=demo.data_dir) == [{"team": "demo", "on_duty": ["demo"]}]


def test_keys_rotate_all_skips_teams_without_an_enrolled_member(demo):
    run_fristed("team", "add", "empty", "--name", "Empty", data_dir=demo.data_dir)
    out = run_fristed("keys", "rotate", "--all", data_dir=demo.data_dir).stdout.splitlines()
    assert out[0].startswith("team demo: new key ") and "sealed to 1 member(s), retired " in out[0]
    assert out[1] == "team empty: skipped, no enrolled member"


def test_purge_prints_counts_only(demo):
    out = run_fristed("purge", data_dir=demo.data_dir).stdout.splitlines()
    assert re.fullmatch(r"purge as of \d{4}-\d\d-\d\d: deleted", out[0])
    assert all(re.fullmatch(r"[a-z -]+: \d+", line) for line in out[1:])
    assert [line.split(":")[0] for line in out[1:6]] == [
        "threads", "messages", "notes", "keys shredded", "audit entries expired"]
    dry = run_fristed("purge", "--dry-run", "--as-of", "2030-01-01", data_dir=demo.data_dir).stdout
    assert dry.startswith("purge as of 2030-01-01: would delete (dry run, nothing deleted)")
    assert json.loads(run_fristed("purge", "--json", "--dry-run", data_dir=demo.data_dir).stdout)["dry_run"] is True


def test_the_help_names_every_row_of_the_command_table():
    out = run_fristed("--help").stdout
    for name in ("init", "serve", "team", "consultant", "duty", "keys", "purge", "backup", "restore", "check", "audit"):
        assert re.search(rf"(?m)^    {name}\b", out), name
    for command, actions in {"team": ("add", "list"), "consultant": ("invite", "list", "remove"),
                             "duty": ("set", "show"), "keys": ("rotate", "list")}.items():
        sub = run_fristed(command, "--help").stdout
        assert all(re.search(rf"(?m)^    {a}\b", sub) for a in actions), sub
        assert "--data-dir" in sub


def test_only_serve_and_check_load_the_web_server_and_the_mailer():
    """The parser is built from every command module: those imports stay light, or every command
    pays for aiohttp and aiosmtplib at start (about 0.3 s of each `fristed` run)."""
    probe = ("import sys; from ops.cli import build_parser; build_parser(); "
             "print(sorted(m for m in ('aiohttp', 'aiosmtplib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_every_listing_command_offers_json():
    """`list`/`show` actions and `audit` (a listing of entries) each take --json (issue 14)."""
    from ops.cli import build_parser

    def choices(parser):
        for action in parser._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                return action.choices
        return {}

    listings = []
    for name, command in choices(build_parser()).items():
        actions = choices(command)
        listings += [(f"{name} {a}", p) for a, p in actions.items() if a in ("list", "show")]
        if name == "audit":
            listings.append((name, command))
    assert {n for n, _ in listings} >= {"team list", "consultant list", "duty show", "keys list", "audit"}
    for name, parser in listings:
        assert any("--json" in action.option_strings for action in parser._actions), name
