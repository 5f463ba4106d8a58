"""The consultant's side for browser tests: a page object with story-named steps (StaffPages)."""

import re
import time
from pathlib import Path

import pyotp
from playwright.sync_api import BrowserContext, Page, expect

from tests.support import run_fristed


class StaffPages:
    """What a consultant does in the staff pages, step by step."""

    def __init__(self, context: BrowserContext, base_url: str):
        self.context = context
        self.page: Page = context.new_page()
        self.base_url = base_url
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)

    def enrol(self, url: str, passphrase: str) -> str:
        """Open the invite URL, choose a passphrase, read the TOTP key off the page, confirm a code."""
        self.page.goto(url)
        expect(self.page.locator("#totp-qr svg")).to_be_visible()
        secret = re.sub(r"\s", "", self.page.locator("#totp-secret").inner_text())
        self.page.fill("#passphrase", "password1234")
        expect(self.page.locator("#strength")).not_to_be_empty()
        self.page.fill("#passphrase", passphrase)
        self.page.fill("#passphrase2", passphrase)
        self.page.fill("#totp", pyotp.TOTP(secret).now())
        self.page.click("#enroll")
        expect(self.page.locator("#enroll-done")).to_be_visible()
        assert "#" not in self.page.url
        return secret

    def log_in(self, username: str, passphrase: str, code: str) -> None:
        self.page.goto(f"{self.base_url}/staff/login?lang=en")
        self.page.fill("#username", username)
        self.page.fill("#passphrase", passphrase)
        self.page.fill("#totp", code)
        self.page.click("#login")
        expect(self.page.locator("#threads")).to_be_visible()
        expect(self.page.locator("#logout")).to_be_visible()

    def thread_ids(self) -> list[str]:
        items = self.page.locator("#threads .thread")
        return [items.nth(i).get_attribute("data-id") or "" for i in range(items.count())]

    def open_thread(self, thread_id: str) -> None:
        self.page.click(f'#threads .thread[data-id="{thread_id}"] button')
        expect(self.page.locator("#thread")).to_have_attribute("data-id", thread_id)
        expect(self.page.locator("#thread .message").first).to_be_visible()

    def messages(self) -> list[tuple[str, str]]:
        items = self.page.locator("#thread .message")
        return [(items.nth(i).get_attribute("data-from") or "", items.nth(i).locator(".text").inner_text()) for i in range(items.count())]

    def reply(self, text: str) -> None:
        before = self.page.locator("#thread .message").count()
        self.page.fill("#reply", text)
        self.page.click("#send-reply")
        expect(self.page.locator("#thread .message")).to_have_count(before + 1)

    def note(self, text: str) -> None:
        before = self.page.locator("#notes .note").count()
        self.page.fill("#note", text)
        self.page.click("#send-note")
        expect(self.page.locator("#notes .note")).to_have_count(before + 1)

    def triage(self, status: str, risk: str) -> None:
        with self.page.expect_response(lambda r: r.request.method == "PATCH"):
            self.page.select_option("#status", status)
        with self.page.expect_response(lambda r: r.request.method == "PATCH"):
            self.page.select_option("#risk", risk)

    def unlock(self, passphrase: str) -> None:
        """After a reload: the session lives, the keys do not; the passphrase opens them again."""
        expect(self.page.locator("#passphrase")).to_be_visible()
        self.page.fill("#passphrase", passphrase)
        self.page.click("#login")
        expect(self.page.locator("#inbox-view")).to_be_visible()

    def row(self, thread_id: str):  # type: ignore[no-untyped-def]
        return self.page.locator(f'#threads .thread[data-id="{thread_id}"]')

    def count(self, view: str) -> int:
        text = self.page.locator(f'#views .count[data-count="{view}"]').inner_text().strip()
        return int(text) if text else -1

    def choose_view(self, view: str) -> None:
        with self.page.expect_response(lambda r: f"/api/v1/staff/threads?view={view}" in r.url):
            self.page.click(f'#views a[data-view="{view}"]')
        expect(self.page.locator(f'#views a[data-view="{view}"]')).to_have_attribute("aria-current", "page")

    def add_template(self, title: str, text: str) -> None:
        before = self.page.locator("#templates .template").count()
        self.page.fill("#template-title", title)
        self.page.fill("#template-text", text)
        self.page.click("#save-template")
        expect(self.page.locator("#templates .template")).to_have_count(before + 1)

    def hand_over(self, to: str, note: str) -> None:
        self.page.select_option("#handover-to", to)
        self.page.fill("#handover-note", note)
        with self.page.expect_response(lambda r: r.url.endswith("/handover") and r.request.method == "POST") as handed:
            self.page.click("#handover")
        assert handed.value.status == 200


def invite_url(data_dir: Path, username: str, email_address: str | None = None) -> str:
    args = ["consultant", "invite", username, "--team", "demo"] + (["--email", email_address] if email_address else [])
    out = run_fristed(*args, data_dir=data_dir).stdout
    url = out.strip().splitlines()[-1]
    assert re.fullmatch(r"https?://\S+/staff/enroll#[A-Za-z0-9_-]+", url), out
    return url


def next_code(secret: str) -> str:
    """The code of the next time step (enrolment spent this step's)."""
    return pyotp.TOTP(secret).at(time.time() + 30)
