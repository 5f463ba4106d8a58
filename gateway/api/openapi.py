"""The OpenAPI 3.1 document served at /api/v1/openapi.json.

Each audience contributes its paths (`openapi_citizen`, `openapi_staff`); a
test fails when the router and this document disagree.
"""

from typing import Any

from aiohttp import web

# Canonical URL-safe base64 without padding, exactly as the server decodes it
# (crypto.encoding.unb64): a last group of 2 or 3 characters must leave its
# unused low bits zero, so its last character comes from a short list.
_CH = "[A-Za-z0-9_-]"
_END2 = "[AQgw]"  # low 4 bits zero
_END3 = "[AEIMQUYcgkosw048]"  # low 2 bits zero
B64 = {
    "type": "string",
    "pattern": f"^(?:{_CH}{{4}})*(?:{_CH}{{2}}{_END3}|{_CH}{_END2})?$",
    "description": "URL-safe base64 without padding, canonical (unused low bits zero)",
}


def b64_pattern(n: int) -> str:
    """The exact pattern of the canonical spelling of `n` bytes."""
    full, rest = divmod(n, 3)
    tail = {0: "", 1: _CH + _END2, 2: _CH * 2 + _END3}[rest]
    return f"^{_CH}{{{4 * full}}}{tail}$"


def b64_bytes(n: int) -> dict:
    length = (4 * n + 2) // 3
    return {
        **B64,
        "pattern": b64_pattern(n),
        "minLength": length,
        "maxLength": length,
        "description": f"{n} bytes, URL-safe base64 without padding (canonical)",
    }


COMPONENTS: dict[str, Any] = {
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
        "Envelope": {
            "description": "Version 2 (authenticated, issue 11) from every writer here; version 1 still accepted in threads "
            "whose first message is version 1. Exact rules in crypto/README.md. A v2 envelope declaring another seq than "
            "the server assigns is 409 stale_seq (read the thread again and re-seal); another role, thread or pinned "
            "team key is 400 bad_envelope.",
            "oneOf": [{"$ref": "#/components/schemas/EnvelopeV1"}, {"$ref": "#/components/schemas/EnvelopeV2"}],
        },
        "EnvelopeV2": {
            "type": "object",
            "description": "crypto/README.md \"Envelope v2\": crypto_box key boxes from the sender's key, bound to from, seq, thread, team",
            "required": ["v", "from", "seq", "thread", "team", "keys", "nonce", "ct"],
            "additionalProperties": False,
            "properties": {
                "v": {"const": 2},
                "from": {"enum": ["citizen", "consultant", "note"]},
                "seq": {"type": "integer", "minimum": 0, "maximum": 2147483647, "description": "0 for a note"},
                "thread": b64_bytes(16),
                "team": b64_bytes(32),
                "keys": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 2,
                    "items": {
                        "type": "object",
                        "required": ["kid", "box"],
                        "additionalProperties": False,
                        "properties": {"kid": b64_bytes(16), "box": b64_bytes(48)},
                    },
                },
                "nonce": b64_bytes(24),
                "ct": {**B64, "minLength": 1387},
            },
        },
        "EnvelopeV1": {
            "type": "object",
            "description": "CRYPTO.md envelope v1; exact rules in crypto/README.md",
            "required": ["v", "keys", "nonce", "ct"],
            "additionalProperties": False,
            "properties": {
                "v": {"const": 1},
                "keys": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 8,
                    "items": {
                        "type": "object",
                        "required": ["kid", "box"],
                        "additionalProperties": False,
                        "properties": {"kid": b64_bytes(16), "box": b64_bytes(80)},
                    },
                },
                "nonce": b64_bytes(24),
                "ct": {**B64, "minLength": 1387},
            },
        },
        "Message": {
            "type": "object",
            "required": ["seq", "from", "at", "envelope"],
            "properties": {
                "seq": {"type": "integer", "minimum": 1},
                "from": {"enum": ["citizen", "consultant"]},
                "at": {"type": "string", "description": "RFC 3339 UTC truncated to the minute, e.g. 2026-11-22T13:05Z"},
                "envelope": {"$ref": "#/components/schemas/Envelope"},
            },
        },
    },
    "responses": {
        status: {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status, text in {
            "400": "malformed request",
            "401": "no valid session",
            "403": "not allowed (or missing X-CSRF-Token)",
            "404": "unknown",
            "409": "conflict",
            "413": "too large",
            "415": "wrong content type",
            "429": "rate limited; see Retry-After (seconds)",
        }.items()
    },
}


def json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def json_answer(description: str, schema: dict | None = None) -> dict:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict:
    return {str(s): {"$ref": f"#/components/responses/{s}"} for s in statuses}


def obj(required: list[str], properties: dict[str, Any], *, closed: bool = True) -> dict:
    schema: dict[str, Any] = {"type": "object", "required": required, "properties": properties}
    if closed:
        schema["additionalProperties"] = False
    return schema


_CHECK = {"type": "string", "enum": ["ok", "fail"]}
HEALTHZ = {
    "get": {
        "summary": "Is this gateway process fit to serve? (for a load balancer or a monitor)",
        "description": "Per process: the database answers, its schema is at the newest migration, the static "
        "assets are present, and the background loops (purge, live events, e-mail) run. Content-free: "
        "which check failed, nothing else. Not logged.",
        "responses": {
            status: json_answer(description, obj(["status", "checks"], {
                "status": {"type": "string", "enum": [word]},
                "checks": obj(["database", "migrations", "static", "loops"], dict.fromkeys(
                    ("database", "migrations", "static", "loops"), _CHECK)),
            }))
            for status, word, description in (("200", "ok", "every check passes"),
                                               ("503", "unavailable", "a check fails: take this process out of rotation"))
        },
    }
}


def document() -> dict:
    # Imported here: the audience modules use the helpers above.
    from gateway.api import openapi_citizen, openapi_staff

    paths: dict[str, Any] = {**openapi_citizen.paths(), **openapi_staff.paths()}
    paths["/healthz"] = HEALTHZ
    paths["/api/v1/openapi.json"] = {
        "get": {"summary": "This document", "responses": {"200": json_answer("OpenAPI 3.1", {"type": "object"})}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Fristed gateway API",
            "version": "1",
            "description": "JSON in and out. Errors are {\"error\": {\"code\", \"message\"}}. "
            "Binary fields are URL-safe base64 without padding; padded or standard base64 is rejected.",
        },
        "paths": paths,
        "components": {**COMPONENTS, "securitySchemes": openapi_staff.security_schemes()},
    }


routes = web.RouteTableDef()


@routes.get("/api/v1/openapi.json")
async def serve(request: web.Request) -> web.Response:
    return web.json_response(document())
