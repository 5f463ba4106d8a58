"""The citizen's side for browser tests: a page object with story-named steps,
and a consultant's side that answers through the real database (sealed as a
consultant's browser seals: to `Z.pk` from `/threads/open` and the team key
from `/config`)."""

import asyncio
import json
import re
import threading
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import nacl.bindings
from playwright.sync_api import Page, expect
from sqlalchemy import select

from crypto import (
    b64,
    derive_citizen,
    derive_staff,
    kid,
    lookup_for,
    normalise_code,
    open_envelope,
    open_key_blob,
    seal_envelope,
    unb64,
)
from crypto.envelope2 import Binding, header_of, open_v2, seal_v2
from gateway.db import Database
from gateway.models import Consultant, Grant, Message, TeamKey, Thread
from gateway.services import staffwrites, threads
from gateway.settings import load_settings
from tests.support import Demo, LiveServer

T = TypeVar("T")
CODE_SHAPE = re.compile(r"^\d{4} \d{4} \d{4} \d{4}$")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine in its own thread and loop: Playwright's sync API owns this thread's loop."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())  # type: ignore[arg-type]
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    worker = threading.Thread(target=target)
    worker.start()
    worker.join(60)
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class Backend:
    """The deployment behind a live server, as tests (and a consultant's browser) see it."""

    demo: Demo
    server: LiveServer

    def get_json(self, path: str, body: dict | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def citizen_keys(self, code: str):  # type: ignore[no-untyped-def]
        config = self.get_json("/api/v1/config")
        return derive_citizen(normalise_code(code), unb64(config["code_salt"]), config["kdf"]["ops"], config["kdf"]["mem"])

    def _with_db(self, work: Callable[[Database], Awaitable[T]]) -> T:
        async def go() -> T:
            db = Database.connect(load_settings(self.demo.data_dir, {}).database_url)
            try:
                return await work(db)
            finally:
                await db.close()

        return run_async(go)

    def thread_for(self, code: str) -> tuple[Thread | None, list[Message]]:
        token = self.citizen_keys(code).access_token

        async def work(db: Database) -> tuple[Thread | None, list[Message]]:
            async with db.read() as session:
                thread = await session.scalar(select(Thread).where(Thread.lookup == lookup_for(token)))
                if thread is None:
                    return None, []
                rows = await session.scalars(select(Message).where(Message.thread_id == thread.id).order_by(Message.seq))
                return thread, list(rows)

        return self._with_db(work)

    def consultant_replies(self, code: str, text: str) -> None:
        """Seal {"text"} to Z.pk (from /threads/open) and the team's current key (from /config); store it."""
        keys = self.citizen_keys(code)
        opened = self.get_json("/api/v1/threads/open", {"access_token": b64(keys.access_token)})
        team = next(t for t in self.get_json("/api/v1/config")["teams"] if t["id"] == opened["team"])
        rows = opened["messages"]
        if rows and rows[0]["envelope"].get("v") == 2:
            # Envelope v2 (issue 11): made with the pinned team key, at the next seq.
            pin = header_of(rows[0]["envelope"]).team_pk
            place = Binding("consultant", max(m["seq"] for m in rows) + 1, unb64(opened["citizen_pk"]), pin)
            envelope = seal_v2({"text": text}, place, self.team_secret_key())
        else:
            envelope = seal_envelope({"text": text}, [unb64(opened["citizen_pk"]), unb64(team["pk"])])
        limits = threads.Limits.of(load_settings(self.demo.data_dir, {}))

        async def work(db: Database) -> None:
            async with db.read() as session:
                thread = await threads.find_thread(session, keys.access_token)
            # As the demo consultant's inbox would send it (the same service the staff API calls).
            await staffwrites.reply(db, limits, "demo", thread.id, threads.parse(envelope, limits))

        self._with_db(work)

    def team_secret_key(self, team_id: str = "demo") -> bytes:
        """The team's current secret key, opened through the demo consultant's grant (their browser's view)."""

        async def work(db: Database) -> tuple[Consultant, TeamKey, Grant]:
            async with db.read() as session:
                consultant = await session.get(Consultant, "demo")
                key = await session.scalar(select(TeamKey).where(TeamKey.team_id == team_id, TeamKey.current.is_(True)))
                assert consultant is not None and key is not None
                grant = await session.get(Grant, {"kid": key.kid, "username": "demo"})
                assert grant is not None
                return consultant, key, grant

        consultant, _key, grant = self._with_db(work)
        assert consultant.salt and consultant.key_blob and consultant.pk
        staff = derive_staff(self.demo.passphrase, consultant.salt, consultant.kdf_ops, consultant.kdf_mem)
        c_sk = open_key_blob(staff.kek, consultant.key_blob)
        return nacl.bindings.crypto_box_seal_open(grant.box, consultant.pk, c_sk)

    def team_reads(self, envelope_json: str) -> str:
        data = json.loads(envelope_json)
        if data.get("v") != 2:
            return open_envelope(data, self.team_secret_key())["text"]
        header = header_of(data)

        async def work(db: Database) -> bytes:
            async with db.read() as session:
                pks = (await session.scalars(select(Thread.citizen_pk))).all()
            return next(pk for pk in pks if kid(pk) == header.thread_kid)

        place = Binding(header.role, header.seq, self._with_db(work), header.team_pk)
        return open_v2(data, self.team_secret_key(), place)["text"]


class CitizenPages:
    """What a citizen does, step by step, with scripts on or off."""

    def __init__(self, page: Page, base_url: str, lang: str = "en"):
        self.page = page
        self.base_url = base_url
        self.lang = lang

    def open_start(self) -> None:
        self.page.goto(f"{self.base_url}/?lang={self.lang}")
        expect(self.page.locator("#quick-exit")).to_be_visible()

    def write_message(self, text: str) -> str:
        """From the start page: write, send, and read the pickup code off the screen."""
        self.page.click("#write-link")
        self.page.fill("#message", text)
        self.page.click("#send")
        code = self.page.locator("#pickup-code")
        expect(code).to_be_visible()
        expect(code).to_have_text(CODE_SHAPE)
        return code.inner_text().strip()

    def open_pickup(self) -> None:
        self.page.goto(f"{self.base_url}/pickup?lang={self.lang}")

    def pick_up(self, typed_code: str) -> None:
        self.open_pickup()
        self.page.fill("#code", typed_code)
        self.page.click("#open")
        expect(self.page.locator("#thread")).to_be_visible()

    def messages(self) -> list[tuple[str, str]]:
        items = self.page.locator("#thread .message")
        return [
            (items.nth(i).get_attribute("data-from") or "", items.nth(i).locator(".text").inner_text())
            for i in range(items.count())
        ]

    def reply(self, text: str) -> None:
        before = self.page.locator("#thread .message").count()
        self.page.fill("#reply", text)
        self.page.click("#send-reply")
        expect(self.page.locator("#thread .message")).to_have_count(before + 1)

    def delete_conversation(self) -> None:
        self.page.click("#delete-thread")
        self.page.click("#confirm-delete")
        expect(self.page.locator("#deleted")).to_be_visible()
