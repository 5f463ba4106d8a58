"""The people around an operator, played through the real HTTP API of a running `fristed serve`.

A citizen writes a thread as their browser would (code → keys → envelope);
a consultant enrols from the URL `fristed consultant invite` printed and logs
in as the inbox would. Nothing here reaches into the server's internals.
"""

import contextlib
import json
import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import nacl.bindings
import nacl.utils
import pyotp
from nacl.public import PrivateKey

from crypto import b64, derive_citizen, derive_staff, generate_code, open_envelope, seal_envelope, seal_key_blob, unb64
from tests.support import run_fristed


def call(url: str, method: str = "GET", body: dict | None = None, headers: dict[str, str] | None = None):
    """(status, JSON answer or None, response headers) of one HTTP request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, response.headers
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None, exc.headers


@dataclass
class Written:
    """What a citizen holds after writing: the code, and what was stored (to look for later)."""

    code: str
    access_token: bytes
    citizen_pk: bytes
    citizen_sk: bytes
    envelope: dict
    expires: str


def write_thread(server_url: str, team: str, text: str) -> Written:
    """POST /api/v1/threads exactly as the citizen's browser does."""
    status, config, _ = call(f"{server_url}/api/v1/config")
    assert status == 200, config
    team_pk = unb64(next(t["pk"] for t in config["teams"] if t["id"] == team))
    code = generate_code()
    keys = derive_citizen(code, unb64(config["code_salt"]), config["kdf"]["ops"], config["kdf"]["mem"])
    envelope = seal_envelope({"text": text}, [team_pk, keys.pk])
    status, answer, _ = call(f"{server_url}/api/v1/threads", "POST", {
        "team": team, "citizen_pk": b64(keys.pk), "access_token": b64(keys.access_token), "envelope": envelope})
    assert status == 201, answer
    return Written(code, keys.access_token, keys.pk, keys.sk, envelope, answer["expires"])


def invite(data_dir: Path, username: str, *teams: str) -> str:
    """`fristed consultant invite`; the enrolment URL from the last line of its output."""
    args = ["consultant", "invite", username, *[a for t in teams for a in ("--team", t)],
            "--email", f"{username}@example.org"]
    out = run_fristed(*args, data_dir=data_dir).stdout
    url = out.strip().splitlines()[-1]
    assert re.fullmatch(r"https?://\S+/staff/enroll#[A-Za-z0-9_-]+", url), out
    return url


@dataclass
class Consultant:
    """A consultant's browser: the passphrase-derived keys, the TOTP app, the session cookie."""

    server_url: str
    username: str
    passphrase: str = "correct horse battery staple"
    sk: bytes = b""
    totp: pyotp.TOTP | None = None
    last_step: int = 0
    cookie: str = ""
    csrf: str = ""
    team_keys: dict[str, bytes] = field(default_factory=dict)  # kid -> team secret key

    def _code(self) -> str:
        """A TOTP code for a step not used yet (each step is accepted once; one step of leeway)."""
        assert self.totp is not None
        step = max(int(time.time()) // 30, self.last_step + 1)
        self.last_step = step
        return self.totp.at(step * 30)

    def enrol(self, enrol_url: str) -> None:
        token = enrol_url.split("#", 1)[1]
        status, started, _ = call(f"{self.server_url}/api/v1/staff/enroll/start", "POST", {"token": token})
        assert status == 200, started
        assert started["username"] == self.username
        self.totp = pyotp.parse_uri(started["totp_uri"])
        salt = nacl.utils.random(16)
        keys = derive_staff(self.passphrase, salt, started["kdf"]["ops"], started["kdf"]["mem"])
        secret = PrivateKey.generate()
        self.sk = bytes(secret)
        status, answer, _ = call(f"{self.server_url}/api/v1/staff/enroll/finish", "POST", {
            "token": token, "salt": b64(salt), "auth_key": b64(keys.auth_key), "pk": b64(bytes(secret.public_key)),
            "key_blob": b64(seal_key_blob(keys.kek, self.sk)), "totp": self._code()})
        assert status == 201, answer

    def login(self) -> dict:
        status, pre, _ = call(f"{self.server_url}/api/v1/staff/prelogin", "POST", {"username": self.username})
        assert status == 200, pre
        keys = derive_staff(self.passphrase, unb64(pre["salt"]), pre["kdf"]["ops"], pre["kdf"]["mem"])
        status, answer, headers = call(f"{self.server_url}/api/v1/staff/login", "POST", {
            "username": self.username, "auth_key": b64(keys.auth_key), "totp": self._code()})
        assert status == 200, answer
        cookie = SimpleCookie(headers["Set-Cookie"])
        self.cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in cookie.items())
        self.csrf = answer["csrf"]
        pk = bytes(PrivateKey(self.sk).public_key)
        self.team_keys = {g["kid"]: nacl.bindings.crypto_box_seal_open(unb64(g["box"]), pk, self.sk)
                          for g in answer["grants"]}
        return answer

    def get(self, path: str):
        return call(f"{self.server_url}{path}", headers={"Cookie": self.cookie})

    def read_thread(self, thread_id: str) -> list[str]:
        """The thread's messages, decrypted with whichever team key each was sealed to."""
        status, thread, _ = self.get(f"/api/v1/staff/threads/{thread_id}")
        assert status == 200, thread
        texts = []
        for message in thread["messages"]:
            kids = [k["kid"] for k in message["envelope"]["keys"]]
            team_sk = next(self.team_keys[k] for k in kids if k in self.team_keys)
            texts.append(open_envelope(message["envelope"], team_sk)["text"])
        return texts


@contextlib.contextmanager
def database(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The deployment's SQLite file, opened and closed again (a lingering reader would pin the WAL)."""
    connection = sqlite3.connect(data_dir / "fristed.db", timeout=30)
    try:
        yield connection
    finally:
        connection.close()


def thread_id_of(data_dir: Path, written: Written) -> str:
    from crypto import lookup_for

    with database(data_dir) as db:
        row = db.execute("SELECT id FROM threads WHERE lookup = ?", (lookup_for(written.access_token),)).fetchone()
    assert row, "the thread is not stored"
    return row[0]


def rows_about(data_dir: Path, thread_id: str) -> dict[str, int]:
    """How many rows of each table still mention a thread."""
    with database(data_dir) as db:
        return {table: db.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?", (thread_id,)).fetchone()[0]
                for table, column in (("threads", "id"), ("messages", "thread_id"), ("notes", "thread_id"),
                                      ("envelope_kids", "thread_id"), ("events", "thread_id"))}


def fristed_json(*args: str, data_dir: Path, env: dict[str, str] | None = None):
    return json.loads(run_fristed(*args, "--json", data_dir=data_dir, env=env).stdout)
