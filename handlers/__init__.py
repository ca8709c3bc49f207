"""The one route table. Each domain module lists (pattern, handler, name[, kwargs]);
tests and links build URLs with `reverse_url(name, ...)`."""

from __future__ import annotations

from typing import Any

from tornado.routing import URLSpec

from handlers import (
    accounts,
    cart,
    catalog,
    discounts,
    ops,
    orders,
    payments,
    realtime,
    reviews,
    track,
    users,
)

# Every module's routes, in matching order.
ROUTES: list[tuple[Any, ...]] = [
    *ops.routes,
    *accounts.routes,
    *users.routes,
    *catalog.routes,
    *discounts.routes,
    *reviews.routes,
    *cart.routes,
    *orders.routes,
    *payments.routes,
    *realtime.routes,
    *track.routes,
]


def api_routes() -> list[tuple[str, type, str]]:
    """(pattern, handler, name) of every route, for the OpenAPI and AsyncAPI documents."""
    return [(route[0], route[1], route[2]) for route in ROUTES]


def make_url_specs(ctx: Any, documents: dict[str, dict[str, Any]]) -> list[URLSpec]:
    """The URL specs of every route; `documents` maps the name of each document route
    (`ops:openapi`, `ops:asyncapi`) to the document it serves, built at start."""
    specs = [
        URLSpec(pattern + "$", handler, _handler_kwargs(ctx, name, extra, documents), name=name)
        for pattern, handler, name, *extra in ROUTES
    ]
    specs.append(
        URLSpec(
            r"/docs/assets/(.*)$",
            ops.DocsAssetHandler,
            {"path": ops.SWAGGER_ASSETS},
            name="ops:docs-assets",
        )
    )
    return specs


def _handler_kwargs(
    ctx: Any, name: str, extra: list[dict[str, Any]], documents: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A handler's `initialize` arguments: the context, the route's own, its document."""
    kwargs = {"ctx": ctx, **(extra[0] if extra else {})}
    if name in documents:
        kwargs["document"] = documents[name]
    return kwargs
