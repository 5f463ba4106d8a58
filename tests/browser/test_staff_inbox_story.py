"""Issue 13, the whole story in headless Chromium against the real `fristed serve`: a team
with threads of every risk and state, the one order checked for a member on duty and one
off duty, views and counts (surviving a reload), keys shared over the event stream at
once, a live arrival (title count and announcement), unread cleared for good, a
reply template inserted with a keypress and sent, a handover with a note, end of shift,
the shortcuts overlay, and the citizen reading the templated reply."""

import datetime as dt
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import pyotp
from nacl.public import PrivateKey
from playwright.sync_api import Browser, expect
from sqlalchemy import insert, select

from crypto.envelope2 import Binding, seal_v2
from gateway.db import Database, minute, utcnow
from gateway.models import Message, TeamKey, Thread
from gateway.settings import load_settings
from tests.browser.citizen import Backend, CitizenPages, run_async
from tests.browser.staff import StaffPages, invite_url, next_code
from tests.support import Demo, LiveServer

RISKS = ["unknown", "low", "medium", "high", "acute"]
RANK = {"acute": 0, "high": 1}
BOB_PASSPHRASE = "sommerhus ved fjorden 42"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TEMPLATE = "Tak fordi du skrev. Vi læser din besked og svarer hurtigst muligt."


@dataclass
class Seeded:
    id: str
    risk: str
    status: str
    assigned_to: str | None
    last_activity: dt.datetime
    waiting_since: dt.datetime | None

    @property
    def needs_reply(self) -> bool:
        return self.waiting_since is not None and self.status != "closed"

    def order(self) -> tuple:
        """The issue's rule, written independently of the server's: danger, then the longest wait, then the most recent."""
        risk = RANK.get(self.risk, 2)
        if self.needs_reply:
            assert self.waiting_since is not None
            return (risk, 0, self.waiting_since.timestamp(), self.id)
        return (risk, 1, -self.last_activity.timestamp(), self.id)


def seed(demo: Demo, server: LiveServer, count: int = 36) -> list[Seeded]:
    """`count` threads in team demo, sealed as the browsers seal (envelope v2: a citizen's message
    with Z, a consultant's with the team key, each bound to its place): every risk; new and
    unanswered, answered, answered then written to again, and closed."""
    team_sk = Backend(demo, server).team_secret_key()

    async def work() -> list[Seeded]:
        db = Database.connect(load_settings(demo.data_dir, {}).database_url)
        now = minute(utcnow())
        made: list[Seeded] = []
        try:
            async with db.write() as session:
                key = await session.scalar(select(TeamKey).where(TeamKey.team_id == "demo", TeamKey.current.is_(True)))
                assert key is not None
                for i in range(count):
                    risk, kind = RISKS[i % 5], i % 4
                    at = now - dt.timedelta(minutes=7 * i + 5)
                    senders = [["citizen"], ["citizen", "consultant"], ["citizen", "consultant", "citizen"], ["citizen", "consultant"]][kind]
                    times = [at - dt.timedelta(minutes=30 * (len(senders) - 1 - n)) for n in range(len(senders))]
                    status = ["new", "waiting", "open", "closed"][kind]
                    assigned = None if kind == 0 else "demo"
                    z = PrivateKey.generate()
                    citizen_pk = bytes(z.public_key)
                    thread_id = secrets.token_urlsafe(12)
                    await session.execute(insert(Thread).values(
                        id=thread_id, team_id="demo", lookup=secrets.token_bytes(32), citizen_pk=citizen_pk, status=status,
                        risk=risk, assigned_to=assigned, sealed_by="server" if i % 9 == 0 else "browser", created=times[0],
                        last_activity=at, expires=(at + dt.timedelta(days=30)).date(), last_seq=len(senders), total_bytes=0))
                    for seq, (sender, moment) in enumerate(zip(senders, times, strict=True), start=1):
                        place = Binding(sender, seq, citizen_pk, key.pk)
                        envelope = seal_v2({"text": f"Besked {i}.{seq} fra {sender}"}, place, bytes(z) if sender == "citizen" else team_sk)
                        await session.execute(insert(Message).values(
                            thread_id=thread_id, seq=seq, sender=sender, at=moment, envelope=json.dumps(envelope)))
                    made.append(Seeded(thread_id, risk, status, assigned, at, at if senders[-1] == "citizen" else None))
        finally:
            await db.close()
        return made

    return run_async(work)


def stored_version(demo: Demo, thread_id: str) -> int:
    async def work() -> int:
        db = Database.connect(load_settings(demo.data_dir, {}).database_url)
        try:
            async with db.read() as session:
                stored = await session.scalar(select(Message.envelope).where(Message.thread_id == thread_id, Message.seq == 1))
        finally:
            await db.close()
        assert stored is not None
        return int(json.loads(stored)["v"])

    return run_async(work)


def title_count(staff: StaffPages) -> int:
    found = re.match(r"^\((\d+)\) ", staff.page.title())
    return int(found.group(1)) if found else 0


def wait_for_title_count(staff: StaffPages, count: int, seconds: float) -> None:
    """Polled from here: the page's CSP (rightly) forbids the eval that wait_for_function needs."""
    deadline = time.monotonic() + seconds
    while title_count(staff) != count:
        assert time.monotonic() < deadline, f"title is {staff.page.title()!r}, not ({count}) …"
        staff.page.wait_for_timeout(50)


def test_a_consultant_on_shift_sees_danger_first_misses_nothing_and_hands_over(browser: Browser, demo: Demo, live_server: LiveServer) -> None:
    seeded = seed(demo, live_server)
    expected = [s.id for s in sorted(seeded, key=Seeded.order)]
    assert seeded[4].risk == "acute" and expected[0] in {s.id for s in seeded if s.risk == "acute"}

    # The demo consultant (on duty since `fristed init --demo`) at 1280x800.
    demo_context = browser.new_context(viewport={"width": 1280, "height": 800})
    demo_staff = StaffPages(demo_context, live_server.url)
    demo_staff.log_in("demo", demo.passphrase, pyotp.TOTP(demo.totp_secret).now())
    expect(demo_staff.page.locator("#threads .thread")).to_have_count(len(seeded))
    assert demo_staff.thread_ids() == expected
    expect(demo_staff.page.locator("#threads .thread").first).to_have_attribute("data-risk", "acute")
    assert demo_staff.page.locator("main").count() == 1 and demo_staff.page.locator("main #threads").count() == 1

    # Counts for every view, then a view that survives a reload (the address, not the device, keeps it).
    open_ = [s for s in seeded if s.status != "closed"]
    counts = {
        "all": len(seeded), "closed": len(seeded) - len(open_),
        "needs_reply": sum(s.needs_reply for s in seeded),
        "urgent": sum(s.risk in ("acute", "high") for s in open_),
        "unassigned": sum(s.assigned_to is None for s in open_),
        "mine": sum(s.assigned_to == "demo" for s in open_),
    }
    for view, number in counts.items():
        expect(demo_staff.page.locator(f'#views .count[data-count="{view}"]')).to_have_text(str(number))
    demo_staff.choose_view("urgent")
    urgent = [i for i in expected if any(s.id == i and s.risk in ("acute", "high") and s.status != "closed" for s in seeded)]
    expect(demo_staff.page.locator("#threads .thread")).to_have_count(counts["urgent"])
    assert demo_staff.thread_ids() == urgent
    demo_staff.page.reload()
    demo_staff.unlock(demo.passphrase)
    expect(demo_staff.page.locator('#views a[data-view="urgent"]')).to_have_attribute("aria-current", "page")
    expect(demo_staff.page.locator("#threads .thread")).to_have_count(counts["urgent"])
    demo_staff.choose_view("all")
    expect(demo_staff.page.locator("#threads .thread")).to_have_count(len(seeded))
    # A thread written without scripts stays marked "sealed by server".
    for i, thread in enumerate(seeded):
        expect(demo_staff.row(thread.id).locator(".sealed-server")).to_have_count(1 if i % 9 == 0 else 0)
    # Previews: the newest message of visible rows, decrypted in the page.
    expect(demo_staff.row(expected[0]).locator(".preview")).to_have_text(re.compile(r"^Besked \d+\.\d fra (citizen|consultant)$"))

    # Bob enrols while demo's inbox is open: demo's page shares the team key at once (grants_pending).
    bob_context = browser.new_context(viewport={"width": 768, "height": 1024})
    bob = StaffPages(bob_context, live_server.url)
    token = invite_url(demo.data_dir, "bob").split("#", 1)[1]
    with demo_staff.page.expect_response(lambda r: r.url.endswith("/api/v1/staff/grants") and r.request.method == "POST", timeout=5000) as shared:
        bob_secret = bob.enrol(f"{live_server.url}/staff/enroll#{token}", BOB_PASSPHRASE)
    assert shared.value.status == 201
    bob.log_in("bob", BOB_PASSPHRASE, next_code(bob_secret))
    expect(bob.page.locator("#threads .thread")).to_have_count(len(seeded))
    assert bob.thread_ids() == expected  # off duty, the same order
    expect(bob.page.locator("#key-wait")).to_be_hidden()
    expect(bob.row(expected[0]).locator(".preview")).to_have_text(re.compile(r"^Besked "))
    assert bob.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling at 768 px"

    # A citizen writes while the inbox is open: the title count and an announcement within 2 s.
    before = title_count(demo_staff)
    citizen_context = browser.new_context()
    citizen = CitizenPages(citizen_context.new_page(), live_server.url)
    citizen.open_start()
    code = citizen.write_message("Jeg tør ikke tage hjem i dag.")
    stored_at = time.monotonic()
    wait_for_title_count(demo_staff, before + 1, 2.0)
    assert time.monotonic() - stored_at < 2.0
    expect(demo_staff.page.locator("#live-status")).to_contain_text(re.compile(r"\S"))
    new_id = next(i for i in demo_staff.thread_ids() if i not in set(expected))
    row = demo_staff.row(new_id)
    expect(row).to_have_attribute("data-unread", "true")
    expect(row).to_have_class(re.compile(r"\bmoved\b"))  # highlighted where it landed
    row.scroll_into_view_if_needed()  # previews are decrypted only for rows on screen
    assert stored_version(demo, new_id) == 2  # the citizen page seals version 2; the preview verifies it at its place
    expect(row.locator(".preview")).to_have_text("Jeg tør ikke tage hjem i dag.")

    # Reading clears the marker, for good.
    demo_staff.open_thread(new_id)
    expect(row).to_have_attribute("data-unread", "false")
    wait_for_title_count(demo_staff, before, 5.0)
    demo_staff.page.reload()
    demo_staff.unlock(demo.passphrase)
    expect(demo_staff.row(new_id)).to_have_attribute("data-unread", "false")

    # A team template, inserted with Alt+1 and sent.
    demo_staff.add_template("Første svar", TEMPLATE)
    demo_staff.open_thread(new_id)
    demo_staff.page.focus("#reply")
    demo_staff.page.keyboard.press("Alt+1")
    expect(demo_staff.page.locator("#reply")).to_have_value(TEMPLATE)
    before_messages = demo_staff.page.locator("#thread .message").count()
    demo_staff.page.click("#send-reply")
    expect(demo_staff.page.locator("#thread .message")).to_have_count(before_messages + 1)

    # Handover to bob with a note, in one step; bob's open inbox sees it.
    demo_staff.hand_over("bob", "Bob tager over: ring efter kl. 16")
    expect(bob.row(new_id).locator(".assignee")).to_contain_text("bob", timeout=3000)
    bob.open_thread(new_id)
    assert bob.messages()[-1] == ("consultant", TEMPLATE)
    expect(bob.page.locator("#notes .note .text")).to_have_text(["Bob tager over: ring efter kl. 16"])

    # The citizen reads the templated reply.
    citizen.pick_up(code)
    assert citizen.messages() == [("citizen", "Jeg tør ikke tage hjem i dag."), ("consultant", TEMPLATE)]

    # End of demo's shift: nobody else on duty, so demo's open threads go back to the team.
    demo_staff.page.click("#end-shift")
    expect(demo_staff.page.locator("#live-status")).to_contain_text(str(counts["mine"]))
    expect(demo_staff.page.locator('#views .count[data-count="mine"]')).to_have_text("0")
    expect(demo_staff.page.locator("#duty-toggle")).to_have_attribute("aria-pressed", "false")

    # Keyboard: the overlay lists the shortcuts; j opens the next thread.
    bob.page.locator("body").click(position={"x": 5, "y": 5})
    bob.page.keyboard.press("?")
    expect(bob.page.locator("#shortcuts")).to_be_visible()
    bob.page.keyboard.press("Escape")
    expect(bob.page.locator("#shortcuts")).to_be_hidden()
    bob.page.keyboard.press("j")
    expect(bob.page.locator("#threads .thread button[aria-current=true]")).to_have_count(1)

    assert demo_staff.problems == [] and bob.problems == []
    for context in (demo_context, bob_context, citizen_context):
        context.close()


def test_a_new_member_is_told_who_can_share_the_key_and_gets_it_the_moment_a_holder_opens_the_inbox(
    browser: Browser, demo: Demo, live_server: LiveServer
) -> None:
    seed(demo, live_server, 3)
    carol_context = browser.new_context()
    carol_context.grant_permissions(["notifications"], origin=live_server.url)
    carol = StaffPages(carol_context, live_server.url)
    token = invite_url(demo.data_dir, "carol").split("#", 1)[1]
    secret = carol.enrol(f"{live_server.url}/staff/enroll#{token}", "vinter ved vesterhavet 9")
    carol.log_in("carol", "vinter ved vesterhavet 9", next_code(secret))
    wait = carol.page.locator("#key-wait")
    expect(wait).to_be_visible()
    expect(wait).to_contain_text("demo")
    expect(carol.page.locator("#threads .thread .preview.locked")).to_have_count(3)

    # Notifications: off until turned on, and the choice is kept with carol, not in the browser.
    assert not carol.page.is_checked("#notify-desktop")
    with carol.page.expect_response(lambda r: r.url.endswith("/api/v1/staff/preferences") and r.request.method == "PATCH"):
        carol.page.check("#notify-desktop")

    # Demo opens the inbox: the key is shared, carol's open inbox hears it and reads at once.
    demo_context = browser.new_context()
    demo_staff = StaffPages(demo_context, live_server.url)
    demo_staff.log_in("demo", demo.passphrase, pyotp.TOTP(demo.totp_secret).now())
    expect(wait).to_be_hidden(timeout=5000)
    expect(carol.page.locator("#threads .thread .preview.locked")).to_have_count(0)
    carol.page.locator("#threads").scroll_into_view_if_needed()  # previews are made for rows on screen
    expect(carol.page.locator("#threads .thread .preview").first).to_have_text(re.compile(r"^Besked "))

    # The live connection drops: the inbox says it is reconnecting, and stops saying so when it is back.
    expect(carol.page.locator("#connection")).to_be_hidden()
    live_server.stop()
    expect(carol.page.locator("#connection")).to_be_visible(timeout=5000)
    live_server.start()  # the same port and data: the session and its keys in the page survive
    expect(carol.page.locator("#connection")).to_be_hidden(timeout=15000)

    # No serious accessibility problem in the inbox with a thread open (axe-core).
    carol.open_thread(carol.thread_ids()[0])
    carol.page.evaluate(AXE.read_text(encoding="utf-8"))  # add_script_tag is blocked by the CSP
    violations = carol.page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '))"""
    )
    assert violations == [], violations

    carol.page.reload()
    carol.unlock("vinter ved vesterhavet 9")
    expect(carol.page.locator("#notify-desktop")).to_be_checked()
    assert carol.page.evaluate("localStorage.length + sessionStorage.length") == 0
    # The browser logs the refused reconnection attempts while the server was down; nothing else.
    for staff in (carol, demo_staff):
        assert [p for p in staff.problems if "ERR_CONNECTION_REFUSED" not in p] == []
    for context in (carol_context, demo_context):
        context.close()
