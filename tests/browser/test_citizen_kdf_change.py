"""A code made before the operator raised the Argon2id cost still opens, with scripts on and off."""

import pytest
from playwright.sync_api import Browser

from tests.browser.citizen import CitizenPages
from tests.support import Demo, LiveServer, set_kdf


@pytest.mark.parametrize("scripts", [True, False], ids=["scripts-on", "scripts-off"])
def test_a_code_from_before_a_cost_change_opens_the_conversation(browser: Browser, demo: Demo, scripts: bool) -> None:
    context = browser.new_context(java_script_enabled=scripts)
    page = context.new_page()
    with LiveServer(demo.data_dir, demo.env) as server:
        writer = CitizenPages(page, server.url)
        writer.open_start()
        code = writer.write_message("Skrevet før ændringen")
    set_kdf(demo.data_dir, ops=2, mem=16384)  # the operator raises the cost and restarts
    with LiveServer(demo.data_dir, demo.env) as server:
        citizen = CitizenPages(page, server.url)
        citizen.pick_up(code)
        assert citizen.messages() == [("citizen", "Skrevet før ændringen")]
    context.close()
