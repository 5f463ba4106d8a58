"""OpenAPI paths of the staff API (session cookie + X-CSRF-Token)."""

from typing import Any

from gateway.api.openapi import b64_bytes, errors, json_answer, json_body, obj

ENVELOPE = {"$ref": "#/components/schemas/Envelope"}
MINUTE = {"type": "string", "description": "RFC 3339 UTC truncated to the minute, e.g. 2026-11-22T13:05Z"}
DATE = {"type": "string", "format": "date"}
STRING = {"type": "string"}
USERNAME = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}
TOTP = {"type": "string", "pattern": "^[0-9]{6}$", "description": "6 digits; each code once per 30 s step, one step either side"}
KDF = obj(["ops", "mem"], {"ops": {"type": "integer"}, "mem": {"type": "integer", "description": "bytes"}})
STATUS = {"enum": ["new", "open", "waiting", "closed"]}
RISK = {"enum": ["unknown", "low", "medium", "high", "acute"]}
NULLABLE_USER = {"type": ["string", "null"]}
THREAD_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"}}]

# Every staff call but enrolment, prelogin and login needs the session cookie (401 without);
# POST/PATCH/DELETE also the header X-CSRF-Token (403 bad_csrf without). `security_schemes()`
# describes both for the document's components.

THREAD = obj(
    ["id", "team", "status", "risk", "assigned_to", "sealed_by", "created", "last_activity", "expires"],
    {
        "id": STRING,
        "team": STRING,
        "status": STATUS,
        "risk": RISK,
        "assigned_to": NULLABLE_USER,
        "sealed_by": {"enum": ["browser", "server"], "description": "server: sent without scripts, sealed by the server on arrival"},
        "created": MINUTE,
        "last_activity": MINUTE,
        "expires": DATE,
    },
)
LISTED_THREAD = {
    **THREAD,
    "required": [*THREAD["required"], "needs_reply", "waiting_since", "last_sender", "last_seq", "read_seq", "unread"],
    "properties": {
        **THREAD["properties"],
        "needs_reply": {"type": "boolean", "description": "the citizen wrote last and the thread is not closed"},
        "waiting_since": {**MINUTE, "type": ["string", "null"],
                          "description": "while needs_reply: the minute of the first unanswered citizen message; else null"},
        "last_sender": {"enum": ["citizen", "consultant", None], "description": "who wrote the newest message"},
        "last_seq": {"type": "integer", "description": "seq of the newest message"},
        "read_seq": {"type": "integer", "description": "how far the caller has read (0: nothing)"},
        "unread": {"type": "boolean", "description": "last_seq > read_seq"},
    },
}
VIEWS = ["all", "mine", "unassigned", "needs_reply", "urgent", "closed"]
COUNTS = obj([*VIEWS, "unread"], {**{view: {"type": "integer"} for view in VIEWS},
                                   "unread": {"type": "integer", "description": "open threads with messages the caller has not read"}})
LIST_PARAMETERS = [
    {"name": "view", "in": "query", "required": False, "schema": {"enum": VIEWS, "default": "all"},
     "description": "mine, unassigned and urgent (acute or high) leave closed threads out; needs_reply: the citizen wrote last"},
    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
    {"name": "after", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 128},
     "description": "the `next` value of the previous page (keyset pagination)"},
]
TEMPLATE = obj(["id", "team", "author", "created", "envelope"],
               {"id": {"type": "integer"}, "team": STRING, "author": STRING, "created": MINUTE, "envelope": ENVELOPE})
TEMPLATE_ID = [{"name": "tid", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}]
PREFS = obj(["desktop", "sound"], {"desktop": {"type": "boolean"}, "sound": {"type": "boolean"}})
GRANT = obj(["team", "kid", "box", "current"], {"team": STRING, "kid": b64_bytes(16), "box": b64_bytes(80), "current": {"type": "boolean"}})
KEYS = {
    "consultant": obj(["username", "teams"], {"username": STRING, "teams": {"type": "array", "items": STRING}}),
    "pk": b64_bytes(32),
    "key_blob": b64_bytes(72),
    "grants": {"type": "array", "items": GRANT, "description": "every grant held, retired keys with current: false"},
}


def security_schemes() -> dict[str, Any]:
    """The two staff credentials, for `components.securitySchemes`."""
    return {
        "staffSession": {
            "type": "apiKey",
            "in": "cookie",
            "name": "fristed_staff",
            "description": "Set by login: HttpOnly; SameSite=Strict; Path=/; Secure unless plain HTTP on loopback. "
            "Ends after 30 idle minutes, 12 hours after login (fristed.toml [staff]) or at logout.",
        },
        "csrfHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRF-Token",
            "description": "The login answer's csrf; required on every POST/PATCH/DELETE with a session (403 bad_csrf).",
        },
    }


SESSION: list[dict[str, list[str]]] = [{"staffSession": []}]
SESSION_AND_CSRF: list[dict[str, list[str]]] = [{"staffSession": [], "csrfHeader": []}]


def _get(summary: str, answer: dict, *statuses: int, **extra: Any) -> dict:
    return {"get": {"summary": summary, "security": SESSION,
                    "responses": {"200": json_answer("ok", answer), **errors(401, *statuses)}, **extra}}


def _change(method: str, summary: str, body: dict, status: str, answer: dict | None, *statuses: int, **extra: Any) -> dict:
    return {
        method: {
            "summary": summary,
            "security": SESSION_AND_CSRF,
            "requestBody": json_body(body),
            "responses": {status: json_answer("done", answer), **errors(400, 401, 403, *statuses)},
            **extra,
        }
    }


def paths() -> dict[str, Any]:
    return {
        "/api/v1/staff/enroll/start": {
            "post": {
                "summary": "Begin enrolment with the invite token: the TOTP secret (made once per invite) as URI and QR code",
                "requestBody": json_body(obj(["token"], {"token": STRING})),
                "responses": {
                    "200": json_answer(
                        "the consultant to enrol",
                        obj(
                            ["username", "totp_uri", "totp_qr", "kdf"],
                            {
                                "username": STRING,
                                "totp_uri": {"type": "string", "description": "otpauth://totp/… for an authenticator app"},
                                "totp_qr": {"type": "string", "description": "the URI as an SVG QR code (markup, no script)"},
                                "kdf": KDF,
                            },
                        ),
                    ),
                    **errors(400, 404, 413, 415),
                },
                "description": "An unknown, used or expired token (invites last 72 hours) is 404 unknown_invite.",
            }
        },
        "/api/v1/staff/enroll/finish": {
            "post": {
                "summary": "Finish enrolment: what the browser made from the passphrase (CRYPTO.md), confirmed with a TOTP code",
                "requestBody": json_body(
                    obj(
                        ["token", "salt", "auth_key", "pk", "key_blob", "totp"],
                        {"token": STRING, "salt": b64_bytes(16), "auth_key": b64_bytes(32), "pk": b64_bytes(32), "key_blob": b64_bytes(72), "totp": TOTP},
                    )
                ),
                "responses": {
                    "201": json_answer("enrolled; the token is spent", obj(["username"], {"username": STRING})),
                    **errors(400, 404, 409, 413, 415),
                },
            }
        },
        "/api/v1/staff/prelogin": {
            "post": {
                "summary": "The consultant's salt and Argon2id cost (an unknown user gets a stable fake salt)",
                "requestBody": json_body(obj(["username"], {"username": USERNAME})),
                "responses": {"200": json_answer("salt and cost", obj(["salt", "kdf"], {"salt": b64_bytes(16), "kdf": KDF})), **errors(400, 413, 415)},
            }
        },
        "/api/v1/staff/login": {
            "post": {
                "summary": "Log in with auth_key and a TOTP code; sets the session cookie and the device cookie",
                "description": "Every failure is 401 bad_login. After 5 failures in a row an account is blocked "
                "30 s, doubling per further failure up to 15 minutes: 429 with Retry-After (seconds). "
                "A success also sets fristed_device (HttpOnly, SameSite=Strict, Path=/api/v1/staff/login): "
                "a browser that sends it back for the same username is not held by the account's block, "
                "and its own failures are counted on the same schedule (SECURITY.md, device cookies).",
                "requestBody": json_body(obj(["username", "auth_key", "totp"], {"username": USERNAME, "auth_key": b64_bytes(32), "totp": TOTP})),
                "responses": {
                    "200": json_answer("logged in", obj(["csrf", "consultant", "pk", "key_blob", "grants"], {"csrf": STRING, **KEYS})),
                    **errors(400, 401, 413, 415, 429),
                },
            }
        },
        "/api/v1/staff/logout": {
            "post": {
                "summary": "End the session on the server",
                "security": SESSION_AND_CSRF,
                "responses": {"204": json_answer("logged out"), **errors(401, 403)},
            }
        },
        "/api/v1/staff/keys": _get(
            "Unlock after a reload: the session's csrf, key_blob, grants, salt and cost",
            obj(["csrf", "consultant", "pk", "key_blob", "grants", "salt", "kdf"], {"csrf": STRING, **KEYS, "salt": b64_bytes(16), "kdf": KDF}),
        ),
        "/api/v1/staff/teams": _get(
            "The caller's teams: current key, who is on duty, every member's key fingerprint (kid)",
            obj(["teams"], {"teams": {"type": "array", "items": obj(
                ["id", "name", "current_kid", "on_duty", "members"],
                {
                    "id": STRING,
                    "name": STRING,
                    "current_kid": {"type": ["string", "null"]},
                    "on_duty": {"type": "array", "items": STRING},
                    "members": {"type": "array", "items": obj(
                        ["username", "kid", "on_duty", "holds_key"],
                        {"username": STRING, "kid": {"type": ["string", "null"]}, "on_duty": {"type": "boolean"},
                         "holds_key": {"type": "boolean", "description": "holds the current team key, so can share it with a new member"}}
                    )},
                },
            )}}),
        ),
        "/api/v1/staff/threads": _get(
            "One page of the caller's teams' threads, the same order for every member: risk acute, then high; then "
            "threads that need a reply, the longest wait first; then the rest, most recent first",
            obj(["threads", "next", "counts"], {
                "threads": {"type": "array", "items": LISTED_THREAD},
                "next": {"type": ["string", "null"], "description": "pass as after= for the next page; null on the last"},
                "counts": COUNTS,
            }),
            400,
            parameters=LIST_PARAMETERS,
            description="Inside acute and high, threads needing a reply come first (longest wait), then the rest (most recent). "
            "Pages are keyset-paginated; answers of 1 KiB or more are gzip-compressed when asked for (they carry no secret).",
        ),
        "/api/v1/staff/previews": _get(
            "The newest message of each listed thread of the caller's teams (others are left out), "
            "for a one-line preview decrypted in the browser",
            obj(["previews"], {"previews": {"type": "array", "items": obj(
                ["id", "citizen_pk", "seq", "from", "at", "envelope"],
                {"id": STRING, "citizen_pk": b64_bytes(32), "seq": {"type": "integer"}, "from": {"enum": ["citizen", "consultant"]}, "at": MINUTE, "envelope": ENVELOPE},
            )}}),
            400,
            parameters=[{"name": "ids", "in": "query", "required": True, "description": "1 to 50 thread ids, separated by commas",
                         "schema": {"type": "string", "maxLength": 1700}}],
        ),
        "/api/v1/staff/threads/{id}/read": _change(
            "post",
            "Mark the thread read up to seq (capped at its newest message; a marker never moves back); answers the marker",
            obj(["seq"], {"seq": {"type": "integer", "minimum": 0}}),
            "200",
            obj(["seq"], {"seq": {"type": "integer"}}),
            404,
            413,
            415,
            parameters=THREAD_ID,
        ),
        "/api/v1/staff/threads/{id}/handover": _change(
            "post",
            "Hand the thread to a teammate (or null: back to the team) with an optional internal note, in one step; audited",
            obj(["to"], {"to": NULLABLE_USER, "note": {**ENVELOPE, "description": "an internal note, sealed to the team's current key only"}}),
            "200",
            THREAD,
            404,
            409,
            413,
            415,
            parameters=THREAD_ID,
        ),
        "/api/v1/staff/shift/end": _change(
            "post",
            "End my shift: off duty on every team; each open thread assigned to me goes to the least loaded teammate "
            "still on duty on its team, or back to the team (unassigned); audited",
            obj([], {}),
            "200",
            obj(["handed_over", "to_team", "off_duty"], {
                "handed_over": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "threads per teammate"},
                "to_team": {"type": "integer", "description": "threads left unassigned (nobody else on duty)"},
                "off_duty": {"type": "boolean"},
            }),
            413,
            415,
        ),
        "/api/v1/staff/preferences": {
            **_get("The caller's notification choices (desktop notification, sound); both off until turned on", PREFS),
            **_change(
                "patch",
                "Turn the content-free desktop notification and/or the sound on or off (kept with the consultant)",
                {"type": "object", "minProperties": 1, "additionalProperties": False,
                 "properties": {"desktop": {"type": "boolean"}, "sound": {"type": "boolean"}}},
                "200",
                PREFS,
                413,
                415,
            ),
        },
        "/api/v1/staff/templates": {
            **_get("The reply templates of the caller's teams, sealed to their team key ({title, text} inside)",
                   obj(["templates"], {"templates": {"type": "array", "items": TEMPLATE}})),
            **_change(
                "post",
                "Add a team reply template, sealed to the team's current key only (100 per team at most: 409 too_many_templates)",
                obj(["team", "envelope"], {"team": STRING, "envelope": ENVELOPE}),
                "201",
                TEMPLATE,
                409,
                413,
                415,
            ),
        },
        "/api/v1/staff/templates/{tid}": {
            **_change(
                "put",
                "Replace a template's envelope (a new text, or re-sealed to a rotated team key)",
                obj(["envelope"], {"envelope": ENVELOPE}),
                "200",
                TEMPLATE,
                404,
                409,
                413,
                415,
                parameters=TEMPLATE_ID,
            ),
            "delete": {
                "summary": "Delete a team reply template",
                "security": SESSION_AND_CSRF,
                "parameters": TEMPLATE_ID,
                "responses": {"204": json_answer("deleted"), **errors(401, 403, 404)},
            },
        },
        "/api/v1/staff/threads/{id}": {
            **_get(
                "One thread with its messages and internal notes (404 for other teams' threads)",
                obj(
                    ["thread", "messages", "notes"],
                    {
                        "thread": {**THREAD, "required": [*THREAD["required"], "citizen_pk"], "properties": {**THREAD["properties"], "citizen_pk": b64_bytes(32)}},
                        "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
                        "notes": {"type": "array", "items": obj(["at", "author", "envelope"], {"at": MINUTE, "author": STRING, "envelope": ENVELOPE})},
                    },
                ),
                404,
                parameters=THREAD_ID,
            ),
            **_change(
                "patch",
                "Set status, risk and/or the assignee (an active member of the thread's team, or null); answers the thread",
                {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {"status": STATUS, "risk": RISK, "assigned_to": NULLABLE_USER}},
                "200",
                THREAD,
                404,
                413,
                415,
                parameters=THREAD_ID,
            ),
        },
        "/api/v1/staff/threads/{id}/reply": _change(
            "post",
            "Reply, sealed to the team's current key and kid(citizen_pk); a new or open thread becomes waiting",
            obj(["envelope"], {"envelope": ENVELOPE}),
            "201",
            obj(["seq"], {"seq": {"type": "integer"}}),
            404,
            409,
            413,
            415,
            parameters=THREAD_ID,
        ),
        "/api/v1/staff/threads/{id}/notes": _change(
            "post",
            "Internal note, sealed to the team's current key only (never shown to the citizen)",
            obj(["envelope"], {"envelope": ENVELOPE}),
            "201",
            {"type": "object"},
            404,
            409,
            413,
            415,
            parameters=THREAD_ID,
        ),
        "/api/v1/staff/duty": _change(
            "post",
            "Go on or off duty for one of the caller's teams",
            obj(["team", "on"], {"team": STRING, "on": {"type": "boolean"}}),
            "200",
            obj(["team", "on", "on_duty"], {"team": STRING, "on": {"type": "boolean"}, "on_duty": {"type": "array", "items": STRING}}),
            413,
            415,
        ),
        "/api/v1/staff/grants/pending": _get(
            "Teammates lacking a grant for a key the caller holds",
            obj(["pending"], {"pending": {"type": "array", "items": obj(
                ["team", "kid", "username", "pk"], {"team": STRING, "kid": b64_bytes(16), "username": STRING, "pk": b64_bytes(32)}
            )}}),
        ),
        "/api/v1/staff/grants": _change(
            "post",
            "Team secret keys sealed to new members' C.pk; only for active members, only from a holder of the key (403 not_allowed)",
            obj(["grants"], {"grants": {"type": "array", "minItems": 1, "maxItems": 256, "items": obj(
                ["team", "kid", "username", "box"], {"team": STRING, "kid": b64_bytes(16), "username": STRING, "box": b64_bytes(80)}
            )}}),
            "201",
            obj(["added"], {"added": {"type": "integer", "description": "grants that were new"}}),
            413,
            415,
        ),
        "/api/v1/staff/events": {
            "get": {
                "summary": "Server-sent events for the caller's teams: thread_new, message_new, thread_changed, grants_pending, keys_shared",
                "description": "Each event is `id: N`, `event: KIND`, `data: {\"thread\": \"ID\"}` (content-free); "
                "a comment every 15 s keeps the line open; Last-Event-ID resumes; the stream ends with the session. "
                "grants_pending (a member joined: share keys now) and keys_shared (a grant was added) are team-wide: "
                "their thread is empty. "
                "It does not count as activity for the idle timeout.",
                "security": SESSION,
                "responses": {
                    "200": {"description": "an event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                    **errors(401),
                },
            }
        },
    }
