"""Citizen pages over the real app: headers, quick exit, no cookies, and the
no-script path (server-made code, server sealing, one-time forms)."""

import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

from sqlalchemy import func, select

from crypto import b64, derive_citizen, kid, normalise_code, open_envelope
from crypto.code import damm_digit
from crypto.encoding import unb64
from crypto.envelope2 import Binding, open_v2
from gateway.app import create_app
from gateway.i18n import Catalogs
from gateway.models import Message, Thread
from gateway.services import noscript
from tests.factories import envelope_for, make_settings, make_world, new_citizen

CATALOGS = Catalogs.load()
FORBIDDEN_IN_CSP = ("'unsafe-inline'", "'unsafe-eval'", "*")


class Page(HTMLParser):
    """What the tests look at in a page: elements by id, forms, scripts, the first body element."""

    def __init__(self, html: str):
        super().__init__()
        self.ids: dict[str, dict[str, str | None]] = {}
        self.forms: list[dict[str, str | None]] = []
        self.inputs: list[dict[str, str | None]] = []
        self.scripts: list[dict[str, str | None]] = []
        self.inline_handlers: list[str] = []
        self.styles: list[str] = []
        self.first_in_body: dict[str, str | None] | None = None
        self.title = ""
        self.lang = ""
        self._in_body = False
        self._in_title = False
        self._texts: dict[str, list[str]] = {}
        self._open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        a["tag"] = tag
        if self._in_body and self.first_in_body is None:
            self.first_in_body = a
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag == "body":
            self._in_body = True
        self._in_title = tag == "title"
        if "id" in a:
            self.ids[a["id"] or ""] = a
        if tag == "form":
            self.forms.append(a)
        if tag in ("input", "textarea", "select"):
            self.inputs.append(a)
        if tag == "script":
            self.scripts.append(a)
        if tag == "style" or "style" in a:
            self.styles.append(tag)
        self.inline_handlers += [k for k in a if k.startswith("on")]

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def assert_citizen_page(response, body: str, quick_exit_url: str) -> Page:
    """INTERFACES.md and issue 3 §5: the same on every citizen page, whatever the answer."""
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "frame-ancestors 'none'" in csp
    assert not any(bad in csp for bad in FORBIDDEN_IN_CSP)
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in headers
    page = Page(body)
    assert page.first_in_body is not None and page.first_in_body.get("id") == "quick-exit", page.first_in_body
    assert page.first_in_body["href"] == quick_exit_url
    # The innocuous title, in the page's language ("Noter" in Danish).
    assert page.title == CATALOGS.get(page.lang).gettext("Notes")
    assert all(s.get("src") and s.get("type") == "module" for s in page.scripts), "only external module scripts"
    assert page.inline_handlers == [] and page.styles == []
    for form in page.forms:
        assert form["method"] == "post" and form["autocomplete"] == "off"
        assert not re.search(r"\d{4}", form.get("action") or "")
    for field in page.inputs:
        if field.get("type") != "hidden":
            assert field.get("autocomplete") == "off", field
    return page


async def get_page(client, path: str):
    response = await client.get(path)
    return response, await response.text()


async def form_ticket(client, path: str) -> str:
    _response, body = await get_page(client, path)
    return re.search(r'name="ticket" value="([^"]+)"', body).group(1)


async def write_without_scripts(client, text: str, lang: str = "en"):
    ticket = await form_ticket(client, f"/write?lang={lang}")
    response = await client.post(f"/write?lang={lang}", data={"message": text, "team": "north", "ticket": ticket})
    return response, await response.text(), ticket


def shown_code(body: str) -> str:
    match = re.search(r'id="pickup-code"[^>]*>([^<]+)<', body)
    assert match, "no pickup code shown"
    return match.group(1).strip()


def thread_ticket(body: str) -> str:
    return re.search(r'id="reply-form".*?name="ticket" value="([^"]+)"', body, re.S).group(1)


async def count_threads(world) -> int:
    async with world.db.read() as session:
        return await session.scalar(select(func.count()).select_from(Thread))


async def test_every_citizen_page_has_quick_exit_security_headers_and_no_cookie(client, world):
    exit_url = world.settings.quick_exit_url
    for path in ("/", "/write", "/pickup", "/?lang=ar", "/write?lang=da", "/pickup?lang=fa", "/no-such-page"):
        response, body = await get_page(client, path)
        assert response.status in (200, 404)
        assert_citizen_page(response, body, exit_url)

    response, body, _ = await write_without_scripts(client, "Hjælp")
    assert response.status == 200
    assert_citizen_page(response, body, exit_url)
    code = shown_code(body)
    answers = [await client.post("/write", data={"message": "x", "team": "north", "ticket": "forged"})]
    ticket = await form_ticket(client, "/pickup")
    answers.append(await client.post("/pickup", data={"step": "open", "code": code, "ticket": ticket}))
    opened = await answers[-1].text()
    for step in ("ask-delete", "refresh", "reply", "delete"):
        answers.append(await client.post("/pickup", data={"step": step, "ticket": thread_ticket(opened), "reply": "tak"}))
        opened = await answers[-1].text()
    ticket = await form_ticket(client, "/pickup")
    answers.append(await client.post("/pickup", data={"step": "open", "code": "1234", "ticket": ticket}))
    for answer in answers:
        assert_citizen_page(answer, await answer.text(), exit_url)
    assert [a.status for a in answers] == [400, 200, 200, 200, 200, 200, 400]


async def test_without_scripts_the_server_seals_exactly_as_crypto_md_says(client, world):
    response, body, _ = await write_without_scripts(client, "Min far tager min telefon")
    assert response.status == 200
    digits = normalise_code(shown_code(body))
    keys = derive_citizen(digits, world.code_salt, world.settings.kdf_ops, world.settings.kdf_mem)
    team_kid, _team_pk, team_sk = await world.team_key("north")
    async with world.db.read() as session:
        thread = await session.scalar(select(Thread).where(Thread.lookup == keys.lookup))
        assert thread is not None
        [message] = (await session.scalars(select(Message).where(Message.thread_id == thread.id))).all()
    assert thread.sealed_by == "server" and thread.citizen_pk == keys.pk
    envelope = json.loads(message.envelope)
    assert {k["kid"] for k in envelope["keys"]} == {team_kid, kid(keys.pk)}
    assert (len(unb64(envelope["ct"])) - 16) % 1024 == 0
    # Envelope version 2 (issue 11): made with Z, bound to seq 1, this thread and the current team key.
    assert (envelope["v"], envelope["from"], envelope["seq"]) == (2, "citizen", 1)
    place = Binding("citizen", 1, keys.pk, _team_pk)
    assert open_v2(envelope, team_sk, place) == {"text": "Min far tager min telefon"}
    assert open_v2(envelope, keys.sk, place) == {"text": "Min far tager min telefon"}


async def test_the_plaintext_and_the_code_never_reach_the_database_file(tmp_path, aiohttp_client):
    world = await make_world(make_settings(tmp_path))
    client = await aiohttp_client(create_app(world.settings))
    _response, body, _ = await write_without_scripts(client, "UNIQUE-PLAINTEXT-4417")
    digits = normalise_code(shown_code(body))
    await world.db.close()
    await client.close()
    path = world.settings.database_url.split("///", 1)[1]
    stored = b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if Path(p).exists())
    assert b"UNIQUE-PLAINTEXT-4417" not in stored and digits.encode() not in stored


async def test_a_resubmitted_write_form_sends_nothing_twice_and_shows_no_code(client, world):
    response, body, ticket = await write_without_scripts(client, "kun én gang")
    assert response.status == 200 and shown_code(body)
    again = await client.post("/write", data={"message": "kun én gang", "team": "north", "ticket": ticket})
    text = await again.text()
    assert again.status == 409
    assert 'id="pickup-code" class="code" dir="ltr" aria-describedby="code-advice"></p>' in text
    assert "kun én gang" not in text
    assert await count_threads(world) == 1


async def test_expired_forged_and_misused_tickets_are_refused(client, world):
    secret = world.settings.secret_key
    old = noscript.issue(secret, noscript.FORM, now=time.time() - noscript.TICKET_SECONDS - 60)
    expired = await client.post("/write?lang=en", data={"message": "hej", "team": "north", "ticket": old})
    assert expired.status == 400 and "open too long" in await expired.text()
    forged = await client.post("/write?lang=en", data={"message": "hej", "team": "north", "ticket": b64(b"x" * 60)})
    assert forged.status == 400 and "not recognised" in await forged.text()
    # A write-form ticket is no thread ticket, and carries no key.
    misused = await client.post("/pickup", data={"step": "reply", "reply": "hej", "ticket": noscript.issue(secret, noscript.FORM)})
    assert misused.status == 400
    assert await count_threads(world) == 0


async def test_a_mistyped_code_is_refused_before_any_work(client, world, monkeypatch):
    def no_argon2(*args, **kwargs):
        raise AssertionError("Argon2id ran for a mistyped code")

    monkeypatch.setattr(noscript, "derive_citizen", no_argon2)
    for typed, message in (("4821 0937 5562 1188", "typing error"), ("4821", "16 digits")):
        ticket = await form_ticket(client, "/pickup?lang=en")
        response = await client.post("/pickup?lang=en", data={"step": "open", "code": typed, "ticket": ticket})
        body = await response.text()
        assert response.status == 400 and message in body
        assert typed not in body


async def test_an_unknown_code_says_so(client, world):
    ticket = await form_ticket(client, "/pickup")
    response = await client.post("/pickup?lang=en", data={"step": "open", "code": new_citizen(world).code, "ticket": ticket})
    assert response.status == 404 and "no conversation for this code" in await response.text()


async def test_without_scripts_a_browser_thread_is_read_answered_and_deleted(client, world):
    citizen = new_citizen(world)
    _kid, team_pk, team_sk = await world.team_key("north")
    created = await client.post("/api/v1/threads", json={
        "team": "north", "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.access_token),
        "envelope": envelope_for("skrevet i browseren", team_pk, citizen.pk)})
    assert created.status == 201

    ticket = await form_ticket(client, "/pickup")
    code = f"{citizen.code[:4]}-{citizen.code[4:]}".translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    opened = await client.post("/pickup?lang=en", data={"step": "open", "code": code, "ticket": ticket})
    body = await opened.text()
    assert opened.status == 200
    # A thread sealed with envelope version 1 stays readable, marked unverified (issue 11).
    assert re.search(r'class="message" data-from="citizen" data-verified="false">.*skrevet i browseren', body, re.S)

    replied = await client.post("/pickup?lang=en", data={"step": "reply", "reply": "svar uden scripts", "ticket": thread_ticket(body)})
    body = await replied.text()
    assert replied.status == 200 and body.count('class="message" data-from') == 2 and "svar uden scripts" in body
    async with world.db.read() as session:
        thread = await session.scalar(select(Thread))
        messages = (await session.scalars(select(Message).order_by(Message.seq))).all()
    assert thread.sealed_by == "server"  # one of its messages passed through the server
    assert open_envelope(json.loads(messages[1].envelope), team_sk)["text"] == "svar uden scripts"

    too_long = await client.post("/pickup?lang=en", data={"step": "reply", "reply": "x" * 10_001, "ticket": thread_ticket(body)})
    body = await too_long.text()
    assert too_long.status == 400 and "at most 10000 characters" in body and "x" * 10_001 in body

    asked = await client.post("/pickup?lang=en", data={"step": "ask-delete", "ticket": thread_ticket(body)})
    body = await asked.text()
    assert 'id="confirm-delete"' in body and 'id="delete-thread"' not in body
    ticket = thread_ticket(body)
    deleted = await client.post("/pickup?lang=en", data={"step": "delete", "ticket": ticket})
    assert deleted.status == 200 and 'id="deleted"' in await deleted.text()
    assert await count_threads(world) == 0
    again = await client.post("/pickup?lang=en", data={"step": "refresh", "ticket": ticket})
    assert again.status == 409 and 'class="message" data-from' not in await again.text()


async def test_empty_too_long_and_unaddressed_messages_are_explained_and_kept(client, world):
    for text, status, message in (("   ", 400, "write something"), ("å" * 10_001, 400, "at most 10000 characters")):
        ticket = await form_ticket(client, "/write?lang=en")
        response = await client.post("/write?lang=en", data={"message": text, "team": "north", "ticket": ticket})
        body = await response.text()
        assert response.status == status and message in body
        assert text.strip() in body
    ticket = await form_ticket(client, "/write?lang=en")
    response = await client.post("/write?lang=en", data={"message": "hej", "team": "nowhere", "ticket": ticket})
    assert response.status == 400 and "choose who" in await response.text()
    assert await count_threads(world) == 0


async def test_pages_speak_danish_by_default_and_keep_the_language_in_forms(client, world):
    _response, body = await get_page(client, "/write")
    assert '<html lang="da" dir="ltr">' in body and "Skriv en besked" in body and 'action="/write?lang=da"' in body
    _response, body = await get_page(client, "/pickup?lang=ar")
    assert '<html lang="ar" dir="rtl">' in body and 'action="/pickup?lang=ar"' in body
    _response, body, _ = await write_without_scripts(client, "hej", lang="da")
    assert "Din afhentningskode" in body and "Husk koden" in body


def test_the_keys_made_from_master_are_those_of_crypto_md():
    digits = "482109375562118"
    digits += damm_digit(digits)
    keys = derive_citizen(digits, b"s" * 16, 1, 8192)
    mine = noscript.Keys(keys.master)
    assert (mine.sk, mine.pk, mine.access_token) == (keys.sk, keys.pk, keys.access_token)
