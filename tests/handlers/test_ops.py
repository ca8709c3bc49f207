"""Ops endpoints, security headers and the error envelope for framework errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from openapi_spec_validator import validate
from tornado.ioloop import IOLoop

from app.server import make_app
from core.config import Settings
from core.context import AppContext
from tests.client import ApiClient
from tests.conftest import build_settings

SECURITY_HEADERS = (
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
    "X-Request-ID",
)


def assert_security_headers(headers: object) -> None:
    for name in SECURITY_HEADERS:
        assert headers.get(name), f"missing {name}"  # type: ignore[attr-defined]
    assert headers.get("X-Content-Type-Options") == "nosniff"  # type: ignore[attr-defined]
    assert headers.get("X-Frame-Options") == "DENY"  # type: ignore[attr-defined]


async def test_health_reports_ok_with_the_database_up(client: ApiClient) -> None:
    response = await client.get("ops:health")
    assert response.status == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == "ok"


# Nothing listens on port 1 of the loopback: every connection is refused.
@pytest.mark.settings(database_url="mysql+aiomysql://nobody@127.0.0.1:1/none")
async def test_health_is_503_unavailable_when_the_database_is_unreachable(
    client: ApiClient, ctx: AppContext
) -> None:
    response = await client.get("ops:health")
    redis = {"redis": "ok"} if ctx.settings.redis_url else {}
    assert response.status == 503
    assert response.headers["Retry-After"]
    assert response.json() == {"status": "unavailable", "database": "unavailable", **redis}


# As above: a Redis URL where nothing answers. The service still takes orders, so a load
# balancer must keep it.
@pytest.mark.settings(redis_url="redis://127.0.0.1:1/0")
async def test_health_is_200_degraded_when_only_redis_does_not_answer(client: ApiClient) -> None:
    response = await client.get("ops:health")
    assert response.status == 200
    assert response.json() == {"status": "degraded", "database": "ok", "redis": "unavailable"}


class SilentServer:
    """A TCP server on loopback that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.connections: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)

    async def stop(self) -> None:
        self.server.close()
        for writer in self.connections:
            writer.transport.abort()
        await self.server.wait_closed()


@pytest.fixture
def silent_server(io_loop: IOLoop) -> Iterator[SilentServer]:
    server = SilentServer()
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


class TestHealthWithARedisThatNeverAnswers:
    @pytest.fixture
    def settings(self, database_url: str, silent_server: SilentServer) -> Settings:
        redis_url = f"redis://127.0.0.1:{silent_server.port}/0"
        return build_settings(database_url, {"redis_url": redis_url, "database_timeout": 1})

    async def test_health_answers_degraded_within_the_database_timeout(
        self, client: ApiClient
    ) -> None:
        started = time.monotonic()
        response = await client.get("ops:health")
        # Redis never answering would hold it forever: 1 s of timeout, and headroom.
        assert time.monotonic() - started < 1 + 2
        assert response.status == 200
        assert response.json() == {"status": "degraded", "database": "ok", "redis": "unavailable"}


async def test_every_response_carries_the_security_headers(client: ApiClient) -> None:
    ok = await client.get("ops:health")
    missing = await client.get("/no/such/page")
    assert ok.status == 200 and missing.status == 404
    assert_security_headers(ok.headers)
    assert_security_headers(missing.headers)


async def test_request_id_is_echoed_or_generated(client: ApiClient) -> None:
    echoed = await client.get("ops:health", headers={"X-Request-ID": "abc-123"})
    generated = await client.get("ops:health")
    assert echoed.headers["X-Request-ID"] == "abc-123"
    assert len(generated.headers["X-Request-ID"]) >= 16


async def test_generated_request_ids_differ_from_request_to_request_and_app_to_app(
    client: ApiClient, ctx: AppContext
) -> None:
    """Ids are a counter after a prefix: another application (another process) must not
    count from the same prefix."""
    ids = [(await client.get("ops:health")).headers["X-Request-ID"] for _ in range(3)]
    other_app = make_app(ctx)
    ids.append(next(other_app.settings["shop_request_ids"]))
    assert len(set(ids)) == 4


async def test_unknown_path_is_a_json_404(client: ApiClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


async def test_unsupported_method_is_a_json_405(client: ApiClient) -> None:
    response = await client.delete("ops:health")
    assert response.status == 405
    assert response.error_code == "method_not_allowed"


async def test_trailing_slash_is_optional(client: ApiClient) -> None:
    assert (await client.get("/health/")).status == 200


async def test_robots_txt_disallows_the_api_and_websockets(client: ApiClient) -> None:
    response = await client.get("ops:robots")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "Disallow: /api/" in response.body.decode()
    assert "Disallow: /ws/" in response.body.decode()


async def test_metrics_count_requests(client: ApiClient) -> None:
    await client.get("ops:health")
    response = await client.get("ops:metrics")
    text = response.body.decode()
    assert response.status == 200
    assert 'shop_http_requests_total{method="GET",route="HealthHandler",status="200"}' in text


async def test_openapi_document_is_valid_and_lists_the_auth_endpoints(client: ApiClient) -> None:
    document = (await client.get("/openapi.json")).json()
    validate(document)
    assert document["openapi"] == "3.0.3"
    assert "/api/v1/auth/login" in document["paths"]
    me = document["paths"]["/api/v1/auth/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


async def test_docs_page_and_its_assets_are_served_locally(client: ApiClient) -> None:
    page = await client.get("/docs")
    assert page.status == 200
    assert b"/docs/assets/swagger-ui-bundle.js" in page.body
    asset = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status == 200 and len(asset.body) > 100_000
    assert (await client.get("/docs/init.js")).status == 200


async def test_oversized_body_is_413_in_the_error_format(
    client: ApiClient, ctx: AppContext
) -> None:
    body = '{"email": "' + "a" * (ctx.settings.max_body_size + 10) + '"}'
    response = await client.request("POST", "auth:login", body=body)
    assert response.status == 413
    assert response.error_code == "payload_too_large"


async def test_the_root_lists_where_things_are(client: ApiClient) -> None:
    response = await client.get("/")
    assert response.status == 200
    links = response.json()["links"]
    assert set(links) == {"docs", "openapi", "asyncapi", "health", "track", "products"}
    for link in links.values():
        path = "/" + link.split("/", 3)[3]
        assert (await client.get(path)).status == 200, link
