"""The OpenAPI document and the router agree, route for route."""

from gateway.api.openapi import document
from gateway.app import create_app
from tests.factories import make_settings

METHODS = {"get", "post", "put", "patch", "delete"}


def router_operations(tmp_path) -> set[tuple[str, str]]:
    app = create_app(make_settings(tmp_path))
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and (route.resource.canonical.startswith("/api/") or route.resource.canonical == "/healthz") and route.method.lower() in METHODS
    }


def documented_operations() -> set[tuple[str, str]]:
    return {(method, path) for path, item in document()["paths"].items() for method in item if method in METHODS}


def test_every_api_route_is_documented_and_every_documented_route_exists(tmp_path):
    assert router_operations(tmp_path) == documented_operations()


def test_every_operation_documents_its_answers_and_errors():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary"), (method, path)
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (method, path)
            if method != "get" or "{" in path:
                assert any(code.startswith("4") for code in responses), (method, path)


def test_every_reference_resolves():
    doc = document()

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(doc):
        target = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]


async def test_the_document_is_served(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_settings(tmp_path)))
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    assert (await response.json()) == document()


def test_staff_operations_declare_their_credentials():
    doc = document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["staffSession"]["in"] == "cookie" and schemes["csrfHeader"]["name"] == "X-CSRF-Token"
    public = {"/api/v1/staff/enroll/start", "/api/v1/staff/enroll/finish", "/api/v1/staff/prelogin", "/api/v1/staff/login"}
    for path, item in doc["paths"].items():
        if not path.startswith("/api/v1/staff/") or path in public:
            continue
        for method, operation in item.items():
            needed = {"staffSession"} | ({"csrfHeader"} if method != "get" else set())
            assert operation.get("security") == [{key: [] for key in needed}], (method, path)
