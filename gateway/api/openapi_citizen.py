"""OpenAPI paths of the citizen API (no cookies, no session)."""

from typing import Any

from gateway.api.openapi import b64_bytes, errors, json_answer, json_body, obj

TOKEN = b64_bytes(32)
ENVELOPE = {"$ref": "#/components/schemas/Envelope"}


def paths() -> dict[str, Any]:
    return {
        "/api/v1/config": {
            "get": {
                "summary": "Public parameters: code salt, Argon2id cost, teams with their current key, limits",
                "responses": {
                    "200": json_answer(
                        "deployment parameters",
                        obj(
                            ["code_salt", "kdf", "teams", "limits"],
                            {
                                "code_salt": b64_bytes(16),
                                "kdf": obj(["ops", "mem"], {"ops": {"type": "integer"}, "mem": {"type": "integer", "description": "bytes"}}),
                                "kdf_previous": {
                                    "type": "array",
                                    "description": "Argon2id costs of codes made before the cost was last changed, newest first; "
                                    "a pickup whose token is unknown (404) derives again with each in turn",
                                    "items": obj(["ops", "mem"], {"ops": {"type": "integer"}, "mem": {"type": "integer", "description": "bytes"}}),
                                },
                                "teams": {
                                    "type": "array",
                                    "items": obj(["id", "name", "kid", "pk"], {"id": {"type": "string"}, "name": {"type": "string"}, "kid": b64_bytes(16), "pk": b64_bytes(32)}),
                                },
                                "limits": obj(["max_text_chars", "max_envelope_bytes"], {"max_text_chars": {"type": "integer"}, "max_envelope_bytes": {"type": "integer"}}),
                            },
                        ),
                    )
                },
            }
        },
        "/api/v1/threads": {
            "post": {
                "summary": "Start a thread (the first message, sealed to the team's current key and the citizen key)",
                "requestBody": json_body(
                    obj(["team", "citizen_pk", "access_token", "envelope"], {"team": {"type": "string"}, "citizen_pk": b64_bytes(32), "access_token": TOKEN, "envelope": ENVELOPE})
                ),
                "responses": {
                    "201": json_answer("created", obj(["expires"], {"expires": {"type": "string", "format": "date"}})),
                    **errors(400, 404, 409, 413, 415, 429),
                },
            }
        },
        "/api/v1/threads/open": {
            "post": {
                "summary": "Read a thread with its access token",
                "requestBody": json_body(obj(["access_token"], {"access_token": TOKEN})),
                "responses": {
                    "200": json_answer(
                        "the thread",
                        obj(
                            ["team", "citizen_pk", "expires", "messages"],
                            {
                                "team": {"type": "string"},
                                "citizen_pk": b64_bytes(32),
                                "expires": {"type": "string", "format": "date"},
                                "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
                            },
                        ),
                    ),
                    **errors(400, 404, 413, 415, 429),
                },
            }
        },
        "/api/v1/threads/reply": {
            "post": {
                "summary": "Add a citizen message to the thread",
                "requestBody": json_body(obj(["access_token", "envelope"], {"access_token": TOKEN, "envelope": ENVELOPE})),
                "responses": {
                    "201": json_answer("added", obj(["seq"], {"seq": {"type": "integer"}})),
                    **errors(400, 404, 409, 413, 415, 429),
                },
            }
        },
        "/api/v1/threads/delete": {
            "post": {
                "summary": "Delete the thread and everything of it",
                "requestBody": json_body(obj(["access_token"], {"access_token": TOKEN})),
                "responses": {"204": json_answer("deleted"), **errors(400, 404, 413, 415, 429)},
            }
        },
    }



