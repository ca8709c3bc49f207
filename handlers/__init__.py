"""The one route table. Each domain module lists (pattern, handler, name[, kwargs]);
tests and links build URLs with `reverse_url(name, ...)`."""

from __future__ import annotations

from typing import Any

from tornado.routing import URLSpec

from handlers import accounts, ops
from handlers import catalog, discounts, reviews
from handlers import cart, orders, payments, realtime

# Every module's routes, in matching order.
ROUTES: list[tuple[Any, ...]] = [
    *ops.routes,
    *accounts.routes,
    *catalog.routes,
    *discounts.routes,
    *reviews.routes,
    *cart.routes,
    *orders.routes,
    *payments.routes,
    *realtime.routes,
]


def api_routes() -> list[tuple[str, type, str]]:
    """(pattern, handler, name) of every route, for the OpenAPI document."""
    return [(route[0], route[1], route[2]) for route in ROUTES]


def make_url_specs(ctx: Any, openapi_document: dict[str, Any]) -> list[URLSpec]:
    specs = [
        URLSpec(pattern + "$", handler, {"ctx": ctx, **(extra[0] if extra else {})}, name=name)
        for pattern, handler, name, *extra in ROUTES
    ]
    specs.append(
        URLSpec(
            r"/openapi.json$",
            ops.OpenAPIHandler,
            {"ctx": ctx, "document": openapi_document},
            name="ops:openapi",
        )
    )
    specs.append(
        URLSpec(
            r"/docs/assets/(.*)$",
            ops.DocsAssetHandler,
            {"path": ops.SWAGGER_ASSETS},
            name="ops:docs-assets",
        )
    )
    return specs
