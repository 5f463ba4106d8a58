"""An independent client, written from CRYPTO.md and INTERFACES.md alone.

It uses only HTTP and PyNaCl (no import from this project) against the real
`fristed serve`: the same bytes a third-party client would produce.
"""


from tests.api.independent import b64d, b64e, call, derive, h, new_code, seal, unseal


def test_an_independent_client_creates_opens_replies_and_deletes(live_server):
    base = live_server.url
    status, config = call(base, "GET", "/api/v1/config")
    assert status == 200
    [team] = [t for t in config["teams"] if t["id"] == "demo"]
    assert team["kid"] == b64e(h(16, b64d(team["pk"])))

    code = new_code()
    z_sk, z_pk, token = derive(code, b64d(config["code_salt"]), config["kdf"])
    team_pk = b64d(team["pk"])
    status, created = call(base, "POST", "/api/v1/threads", {
        "team": "demo", "citizen_pk": b64e(z_pk), "access_token": b64e(token),
        "envelope": seal("Første besked", [team_pk, z_pk])})
    assert status == 201, created
    assert len(created["expires"]) == 10

    # Coming back later: only the code is remembered; everything is derived again.
    z_sk2, _, token2 = derive(code, b64d(config["code_salt"]), config["kdf"])
    status, thread = call(base, "POST", "/api/v1/threads/open", {"access_token": b64e(token2)})
    assert status == 200
    assert thread["citizen_pk"] == b64e(z_pk)
    assert [unseal(m["envelope"], z_sk2) for m in thread["messages"]] == ["Første besked"]

    status, _ = call(base, "POST", "/api/v1/threads/reply", {"access_token": b64e(token), "envelope": seal("Mere", [team_pk, z_pk])})
    assert status == 201
    status, thread = call(base, "POST", "/api/v1/threads/open", {"access_token": b64e(token)})
    assert [(m["seq"], m["from"], unseal(m["envelope"], z_sk)) for m in thread["messages"]] == [
        (1, "citizen", "Første besked"), (2, "citizen", "Mere")]

    status, _ = call(base, "POST", "/api/v1/threads/delete", {"access_token": b64e(token)})
    assert status == 204
    status, error = call(base, "POST", "/api/v1/threads/open", {"access_token": b64e(token)})
    assert status == 404 and error["error"]["code"]
