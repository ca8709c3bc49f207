"""Ops endpoints: health, metrics, robots.txt, the OpenAPI and AsyncAPI documents and
Swagger UI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import prometheus_client
import swagger_ui_bundle
import tornado.web
from sqlalchemy import text

from core import errors
from handlers.base import HTML, SCRIPT, BaseHandler, ErrorEnvelope, file_route, security_headers
from handlers.endpoints import endpoint
from schemas.ops import HealthOut

STATIC_DOCS = Path(__file__).resolve().parent.parent / "static" / "docs"
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# What /health says of the service and of each part it checks.
OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"


class HealthHandler(BaseHandler):
    """200 "ok"; 200 "degraded" when only Redis is down (the service still takes orders,
    so a load balancer must keep it); 503 "unavailable" when the database does not
    answer. Both checks run at once, each bounded by DATABASE_TIMEOUT, so the probe
    itself answers within that time whatever hangs."""

    @endpoint(
        "Is the service up (503 when a store it needs does not answer)",
        response=HealthOut,
        also=(503,),
    )
    async def get(self) -> None:
        database, redis = await asyncio.gather(self._check_database(), self._check_redis())
        if database == UNAVAILABLE:
            status = UNAVAILABLE
        else:
            status = DEGRADED if redis == UNAVAILABLE else OK
        body = {"status": status, "database": database}
        if redis is not None:
            body["redis"] = redis
        if status == UNAVAILABLE:
            self.set_header("Retry-After", str(errors.ServiceUnavailable.retry_after))
        self.write_json(body, status=503 if status == UNAVAILABLE else 200)

    async def _check_database(self) -> str:
        try:
            async with asyncio.timeout(self.ctx.settings.database_timeout):
                async with self.ctx.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception:  # any failure to answer means "down" for a health probe
            return UNAVAILABLE
        return OK

    async def _check_redis(self) -> str | None:
        if self.ctx.redis is None:
            return None
        try:
            async with asyncio.timeout(self.ctx.settings.database_timeout):
                await self.ctx.redis.ping()
        except Exception:  # same: no answer, whatever the reason
            return UNAVAILABLE
        return OK


class MetricsHandler(BaseHandler):
    @endpoint("Prometheus metrics", media_type="text/plain")
    async def get(self) -> None:
        self.set_header("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)
        self.finish(prometheus_client.generate_latest(self.ctx.metrics.registry))


class IndexHandler(BaseHandler):
    """GET /: where things are, for a person or a client landing on the bare address."""

    LINKS = {
        "docs": "ops:docs",
        "openapi": "ops:openapi",
        "asyncapi": "ops:asyncapi",
        "health": "ops:health",
        "track": "track:page",
        "products": "catalog:products",
    }

    async def get(self) -> None:
        base = f"{self.request.protocol}://{self.request.host}"
        links = {name: base + self.reverse_url(route) for name, route in self.LINKS.items()}
        self.write_json({"name": "Shop API", "links": links})


class RobotsHandler(BaseHandler):
    @endpoint("Crawlers keep out of /api/ and /ws/", media_type="text/plain")
    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("User-agent: *\nDisallow: /api/\nDisallow: /ws/\n")


class DocumentHandler(BaseHandler):
    """A JSON document built once at start (OpenAPI, AsyncAPI), passed in as `document`."""

    def initialize(self, ctx: Any, document: dict[str, Any]) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.document = document

    @endpoint("This OpenAPI document, or the AsyncAPI one of the websocket channels")
    async def get(self) -> None:
        self.write_json(self.document)


class DocsAssetHandler(ErrorEnvelope, tornado.web.StaticFileHandler):
    """Swagger UI's files from the pinned swagger-ui-bundle package: /docs works offline.
    A name that is not one of its files (outside the directory, a directory, a NUL byte
    or anything else the filesystem refuses) is 404 in the error envelope."""

    def set_default_headers(self) -> None:
        self.set_header("X-Request-ID", self.request_id)
        for name, value in security_headers(DOCS_CSP, debug=bool(self.settings.get("shop_debug"))):
            self.set_header(name, value)

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        try:
            return super().get_absolute_path(root, path)
        except tornado.web.HTTPError as error:  # Tornado's 403: outside the directory
            raise errors.NotFound() from error

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        try:
            return super().validate_absolute_path(root, absolute_path)
        # Tornado's 403 (outside the directory, not a file) and 404 become one answer,
        # and a name the filesystem cannot even look up (ValueError) is not a crash.
        except (tornado.web.HTTPError, ValueError, OSError) as error:
            raise errors.NotFound() from error


SWAGGER_ASSETS = swagger_ui_bundle.swagger_ui_path

routes = [
    (r"/", IndexHandler, "ops:index"),
    (r"/health", HealthHandler, "ops:health"),
    (r"/metrics", MetricsHandler, "ops:metrics"),
    (r"/robots.txt", RobotsHandler, "ops:robots"),
    (r"/openapi.json", DocumentHandler, "ops:openapi"),
    (r"/asyncapi.json", DocumentHandler, "ops:asyncapi"),
    file_route(r"/docs", "ops:docs", STATIC_DOCS / "index.html", HTML, DOCS_CSP),
    file_route(r"/docs/init.js", "ops:docs-init", STATIC_DOCS / "init.js", SCRIPT, DOCS_CSP),
]
