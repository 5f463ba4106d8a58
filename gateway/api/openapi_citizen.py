"""OpenAPI paths of the citizen API (no cookies, no session)."""

from typing import Any

from gateway.api.openapi import B64, b64_bytes, errors, json_answer, json_body, obj

TOKEN = b64_bytes(32)
ENVELOPE = {"$ref": "#/components/schemas/Envelope"}
KDF = obj(["ops", "mem"], {"ops": {"type": "integer"}, "mem": {"type": "integer", "description": "bytes"}})
POW = {
    **obj(["challenge", "nonce"], {"challenge": b64_bytes(32), "nonce": {**B64, "minLength": 11, "maxLength": 43}}),
    "description": "Proof of work (INTERFACES.md 1.1): required (403 pow_required) while /config's pow.bits > 0. "
    "`nonce` is 8 to 32 bytes such that Argon2id(nonce, challenge[0:16], ops, mem) has at least the challenge's "
    "bits leading zero bits; a challenge is good for one write (409 stale_challenge after), 400 bad_pow otherwise.",
}


def paths() -> dict[str, Any]:
    return {
        "/api/v1/config": {
            "get": {
                "summary": "Public parameters: code salt, Argon2id cost, teams with their current key, limits",
                "responses": {
                    "200": json_answer(
                        "deployment parameters",
                        obj(
                            ["code_salt", "kdf", "teams", "limits", "pow"],
                            {
                                "code_salt": b64_bytes(16),
                                "kdf": KDF,
                                "kdf_previous": {
                                    "type": "array",
                                    "description": "Argon2id costs of codes made before the cost was last changed, newest first; "
                                    "a pickup whose token is unknown (404) derives again with each in turn",
                                    "items": KDF,
                                },
                                "pow": obj(["bits"], {"bits": {"type": "integer", "minimum": 0, "description": "leading zero bits asked of anonymous writes now (0: none)"}}),
                                "teams": {
                                    "type": "array",
                                    "items": obj(["id", "name", "kid", "pk"], {"id": {"type": "string"}, "name": {"type": "string"}, "kid": b64_bytes(16), "pk": b64_bytes(32)}),
                                },
                                "limits": obj(
                                    ["max_text_chars", "max_envelope_bytes", "max_messages_per_thread"],
                                    {"max_text_chars": {"type": "integer"}, "max_envelope_bytes": {"type": "integer"},
                                     "max_messages_per_thread": {"type": "integer", "description": "a reply beyond it is 409 thread_full"}},
                                ),
                            },
                        ),
                    )
                },
            }
        },
        "/api/v1/challenge": {
            "post": {
                "summary": "A proof-of-work challenge (stateless, made under the server's secret, any process accepts it)",
                "requestBody": json_body(obj([], {})),
                "responses": {
                    "200": json_answer(
                        "a challenge",
                        obj(
                            ["challenge", "bits", "ops", "mem", "expires"],
                            {
                                "challenge": b64_bytes(32),
                                "bits": {"type": "integer", "minimum": 0},
                                "ops": {"type": "integer"},
                                "mem": {"type": "integer", "description": "bytes"},
                                "expires": {"type": "string", "description": "RFC 3339 UTC, to the minute"},
                            },
                        ),
                    ),
                    **errors(400, 413, 415),
                },
            }
        },
        "/api/v1/threads": {
            "post": {
                "summary": "Start a thread (the first message, sealed to the team's current key and the citizen key)",
                "requestBody": json_body(
                    obj(["team", "citizen_pk", "access_token", "envelope"], {"team": {"type": "string"}, "citizen_pk": b64_bytes(32), "access_token": TOKEN, "envelope": ENVELOPE, "pow": POW})
                ),
                "responses": {
                    "201": json_answer("created", obj(["expires"], {"expires": {"type": "string", "format": "date"}})),
                    **errors(400, 403, 404, 409, 413, 415, 429),
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
                "requestBody": json_body(obj(["access_token", "envelope"], {"access_token": TOKEN, "envelope": ENVELOPE, "pow": POW})),
                "responses": {
                    "201": json_answer("added", obj(["seq"], {"seq": {"type": "integer"}})),
                    **errors(400, 403, 404, 409, 413, 415, 429),
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



