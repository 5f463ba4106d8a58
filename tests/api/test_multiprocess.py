"""Several gateway processes on one PostgreSQL database (PRODUCT.md "Where users outgrow one machine")."""

import asyncio

import aiohttp

from crypto import b64, derive_citizen, generate_code, seal_envelope, unb64
from tests.support import LiveServer, init_demo


async def test_two_processes_share_threads_and_never_hand_out_the_same_seq(tmp_path, postgres):
    env = {"FRISTED_DATABASE_URL": postgres.create_database()}
    demo = init_demo(tmp_path / "data", env=env)
    with LiveServer(demo.data_dir, env) as first, LiveServer(demo.data_dir, env) as second:
        async with aiohttp.ClientSession() as http:
            config = await (await http.get(first.url + "/api/v1/config")).json()
            team_pk = unb64(config["teams"][0]["pk"])
            keys = derive_citizen(generate_code(), unb64(config["code_salt"]), config["kdf"]["ops"], config["kdf"]["mem"])
            token = b64(keys.access_token)

            def envelope(text: str) -> dict:
                return seal_envelope({"text": text}, [team_pk, keys.pk])

            created = await http.post(second.url + "/api/v1/threads", json={
                "team": "demo", "citizen_pk": b64(keys.pk), "access_token": token, "envelope": envelope("first")})
            assert created.status == 201

            async def reply(url: str, n: int) -> int:
                async with http.post(url + "/api/v1/threads/reply", json={"access_token": token, "envelope": envelope(f"r{n}")}) as answer:
                    return answer.status

            statuses = await asyncio.gather(*(reply((first, second)[n % 2].url, n) for n in range(20)))
            assert statuses == [201] * 20

            for server in (first, second):
                thread = await (await http.post(server.url + "/api/v1/threads/open", json={"access_token": token})).json()
                assert [m["seq"] for m in thread["messages"]] == list(range(1, 22))
