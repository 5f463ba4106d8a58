"""The access log (gateway/accesslog.py): staff line by line, citizens not at all or per minute (issue 10)."""

import logging

import pytest

from gateway.accesslog import ACCESS_LOGGER, CITIZEN_COUNTS, AccessLogger
from gateway.app import create_app
from tests.factories import make_settings, make_world


@pytest.fixture
async def app_client(tmp_path, aiohttp_server, aiohttp_client, request):
    settings = make_settings(tmp_path, log={"citizen_requests": request.param})
    world = await make_world(settings)
    await world.db.close()
    app = create_app(settings)
    server = await aiohttp_server(app, access_log_class=AccessLogger, access_log=logging.getLogger(ACCESS_LOGGER))
    client = await aiohttp_client(server)
    return app, client


def access_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


@pytest.mark.parametrize("app_client", [False], indirect=True)
async def test_by_default_citizen_requests_are_not_logged_and_staff_ones_name_the_route(app_client, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    app, client = app_client
    assert (await client.get("/api/v1/config")).status == 200
    assert (await client.post("/api/v1/threads/open", json={"access_token": "A" * 43})).status == 404
    assert (await client.get("/api/v1/staff/threads/SOMETHREADID1234")).status == 401
    lines = [r.getMessage() for r in access_lines(caplog)]
    assert len(lines) == 1 and lines[0].startswith("GET /api/v1/staff/threads/{id} 401 "), lines
    assert CITIZEN_COUNTS not in app


@pytest.mark.parametrize("app_client", [True], indirect=True)
async def test_when_on_citizen_requests_are_counted_and_logged_once_a_minute_stamped_with_the_minute(app_client, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    app, client = app_client
    for _ in range(3):
        assert (await client.get("/api/v1/config")).status == 200
    assert (await client.post("/api/v1/threads/open", json={"access_token": "A" * 43})).status == 404
    assert access_lines(caplog) == [], "a citizen request was logged on its own"
    app[CITIZEN_COUNTS].flush(1_800_000_000.0)
    (record,) = access_lines(caplog)
    assert record.created == 1_800_000_000.0 and record.msecs == 0
    assert record.getMessage() == ("citizen requests in this minute: GET /api/v1/config 200 x3; "
                                   "POST /api/v1/threads/open 404 x1")
