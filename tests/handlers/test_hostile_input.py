"""Hostile input (docs/api.md): each is a 4xx in the error format that changes nothing,
every route answers HEAD like GET and lists its methods in `Allow` on a 405, and
verification mails cannot be asked for without limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from tornado.httputil import HTTPHeaders, parse_response_start_line

from core.context import AppContext
from models import Base
from models.mail import OutboxMessage
from tests.client import ApiClient, Response
from tests.factories import LoggedIn, count_rows, create_user, log_in
from tests.handlers.test_ops import assert_security_headers
from tests.order_factories import ADDRESS, add_discount, placed_order

# Fixtures "stripe_api" (the stand-in) and "settings" (Stripe configured against it).
from tests.stripe_stub import (  # noqa: F401 (fixtures)
    event,
    signature,
    stripe_api_fixture,
    stripe_settings_fixture,
)
from tests.ws import close_code, open_socket

MAX_BODY_SIZE = 1024 * 1024  # the default the tests run with
DEEP_JSON = "[" * 100_000 + "]" * 100_000
LONG_INTEGER = "9" * 5_000
TOO_LONG_ID = "9" * 19  # routes and parameters take ids of at most 18 digits


@dataclass
class World:
    """A shop with a product, an order and the users to send requests as."""

    staff: LoggedIn
    shopper: LoggedIn
    order_id: int


@pytest.fixture
def world(io_loop: Any, client: ApiClient, ctx: AppContext) -> World:
    async def build() -> World:
        shopper, order = await placed_order(client, ctx)  # "brass-lamp", and an order of it
        staff = await log_in(client, ctx, "staff@example.com", staff=True)
        return World(staff=staff, shopper=shopper, order_id=order["id"])

    return io_loop.run_sync(build)  # type: ignore[no-any-return]


Send = Callable[[ApiClient, World], Awaitable[Response]]


def send(
    method: str,
    route: str,
    *args: str,
    body: Any = None,
    query: str = "",
    user: str | None = None,
    signed: bool = False,
) -> Send:
    """A request as `user` ("staff", "shopper" or anonymous); `body` is sent as it is
    when a string, JSON-encoded otherwise, and signed like Stripe's when `signed`."""
    text = body if isinstance(body, str) or body is None else json.dumps(body)

    async def sending(client: ApiClient, world: World) -> Response:
        token = getattr(world, user).token if user else None
        headers = {"Stripe-Signature": signature(text or "")} if signed else None
        return await client.request(
            method, route, *args, body=text, query=query, token=token, headers=headers
        )

    return sending


def raw(head: bytes, body: bytes = b"") -> Send:
    """Bytes written to the socket as they are: a request line and headers, then `body`
    (then nothing more); the answer is read until the server closes the connection."""

    async def sending(client: ApiClient, world: World) -> Response:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.http.get_http_port())
        writer.write(head + b"\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        head_text, _, content = answer.partition(b"\r\n\r\n")
        start_line, _, header_lines = head_text.decode("latin-1").partition("\r\n")
        return Response(
            parse_response_start_line(start_line).code, HTTPHeaders.parse(header_lines), content
        )

    return sending


def get_path(path: str) -> Send:
    """GET `path` exactly as written (no client between may decode or tidy it)."""
    return raw(f"GET {path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n".encode())


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


PRODUCT = {"name": "Huge Lamp", "price": "10.00"}
DISCOUNT = {"code": "HUGE", "kind": "fixed", "value": "5.00"}
WEBHOOK = "payments:stripe-webhook"
REGISTER = {"email": "eve@example.com", "password": "a long passphrase"}
STATIC_PATHS_OF_NO_FILE = {
    "docs-asset-nul": "/docs/assets/swagger-ui.css%00",
    "docs-asset-nul-inside": "/docs/assets/swagger%00ui.css",
    "docs-asset-dot-dot": "/docs/assets/../../../../../etc/passwd",
    "docs-asset-encoded-slash": "/docs/assets/..%2F..%2F..%2Fetc%2Fpasswd",
    "docs-asset-encoded-dots": "/docs/assets/%2e%2e%2f%2e%2e%2fsetup.cfg",
    "docs-asset-directory": "/docs/assets/.",
    "docs-asset-name-too-long": "/docs/assets/" + "a" * 5000,
    "docs-page-nul": "/docs%00",
    "docs-script-nul": "/docs/init.js%00",
    "track-page-nul": "/track%00",
    "track-script-nul": "/track/track.js%00",
    "track-stylesheet-nul": "/track/track.css%00",
    "track-dot-dot": "/track/../../core/config.py",
    "track-encoded-slash": "/track/..%2F..%2Fcore%2Fconfig.py",
}
HOSTILE = [
    # JSON beyond the bounds of core/json_input.py, on any endpoint that takes JSON.
    pytest.param(
        send("POST", "auth:register", body=DEEP_JSON),
        400,
        "invalid_json",
        None,
        id="json-nested-100k-deep",
    ),
    pytest.param(
        send("PATCH", "catalog:product", "brass-lamp", body={"name": nested(33)}, user="staff"),
        400,
        "invalid_json",
        None,
        id="json-33-levels-deep",
    ),
    pytest.param(
        send(
            "POST",
            "cart:items",
            body=f'{{"product": "brass-lamp", "quantity": {LONG_INTEGER}}}',
            user="shopper",
        ),
        400,
        "invalid_json",
        None,
        id="integer-of-5000-digits",
    ),
    # Amounts beyond the columns' range, in query filters and in bodies.
    pytest.param(
        send("GET", "catalog:products", query="min_price=1e30"),
        400,
        "validation_error",
        "min_price",
        id="min-price-1e30",
    ),
    pytest.param(
        send("GET", "catalog:products", query="max_price=1e26"),
        400,
        "validation_error",
        "max_price",
        id="max-price-1e26",
    ),
    pytest.param(
        send("POST", "catalog:products", body='{"name": "Huge Lamp", "price": 1e30}', user="staff"),
        400,
        "validation_error",
        "price",
        id="product-price-1e30",
    ),
    pytest.param(
        send("PATCH", "catalog:product", "brass-lamp", body={"price": "1e30"}, user="staff"),
        400,
        "validation_error",
        "price",
        id="product-price-change-1e30",
    ),
    pytest.param(
        send(
            "POST", "catalog:discounts", body={**DISCOUNT, "min_order_total": "1e30"}, user="staff"
        ),
        400,
        "validation_error",
        "min_order_total",
        id="discount-min-order-total-1e30",
    ),
    pytest.param(
        send("POST", "catalog:discounts", body={**DISCOUNT, "value": "1e30"}, user="staff"),
        400,
        "validation_error",
        "value",
        id="discount-value-1e30",
    ),
    # Bodies over MAX_BODY_SIZE: refused from the headers, or at the first bytes past it.
    pytest.param(
        send("POST", "auth:register", body="x" * (4 * MAX_BODY_SIZE + 1)),
        413,
        "payload_too_large",
        None,
        id="body-over-4x-max-body-size",
    ),
    pytest.param(
        raw(
            b"POST /api/v1/auth/register HTTP/1.1\r\nHost: shop\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n"
        ),
        413,
        "payload_too_large",
        None,
        id="content-length-of-1-gib-never-sent",
    ),
    pytest.param(
        raw(
            b"POST /api/v1/auth/register HTTP/1.1\r\nHost: shop\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
            b"40000000\r\n" + b"x" * (MAX_BODY_SIZE + 1),  # a 1 GiB chunk, cut short
        ),
        413,
        "payload_too_large",
        None,
        id="chunked-body-past-max-body-size",
    ),
    # A signed Stripe event that does not fit: checked once the signature holds.
    pytest.param(
        send("POST", WEBHOOK, body=event("charge.refunded", {}, "evt_" + "x" * 300), signed=True),
        400,
        "validation_error",
        "id",
        id="webhook-event-id-of-304-characters",
    ),
    pytest.param(
        send("POST", WEBHOOK, body=DEEP_JSON, signed=True),
        400,
        "invalid_json",
        None,
        id="webhook-nested-100k-deep",
    ),
    # NUL bytes in query values and body strings, nested ones included.
    pytest.param(
        send("GET", "catalog:products", query="q=%00"),
        400,
        "validation_error",
        "q",
        id="nul-in-a-query-filter",
    ),
    pytest.param(
        send("GET", "orders:list", query="page=1%00", user="shopper"),
        400,
        "validation_error",
        "page",
        id="nul-in-a-page-number",
    ),
    pytest.param(
        send("POST", "auth:register", body={**REGISTER, "full_name": "Eve\u0000"}),
        400,
        "validation_error",
        "full_name",
        id="nul-in-a-body-string",
    ),
    pytest.param(
        send(
            "POST",
            "orders:list",
            body={"shipping_address": {**ADDRESS, "city": "Berlin\u0000"}},
            user="shopper",
        ),
        400,
        "validation_error",
        "shipping_address.city",
        id="nul-in-a-nested-body-string",
    ),
    # Over-long ids: a path that no route matches, or a parameter out of range.
    pytest.param(
        send("GET", f"/api/v1/orders/{TOO_LONG_ID}", user="shopper"),
        404,
        "not_found",
        None,
        id="order-id-of-19-digits-in-the-path",
    ),
    pytest.param(
        send("GET", "catalog:products", query=f"page={TOO_LONG_ID}"),
        400,
        "validation_error",
        "page",
        id="page-of-19-digits",
    ),
    # Paths of the static files (Swagger UI's, the pages' own) that name none of them.
    *(
        pytest.param(get_path(path), 404, "not_found", None, id=name)
        for name, path in STATIC_PATHS_OF_NO_FILE.items()
    ),
    pytest.param(
        get_path("/docs/assets/%ff.css"), 400, "validation_error", None, id="docs-asset-not-utf-8"
    ),
]


async def row_counts(ctx: AppContext) -> dict[str, int]:
    """How many rows every table holds."""
    return {table.name: await count_rows(ctx, table) for table in Base.metadata.sorted_tables}


@pytest.mark.parametrize(("request_", "status", "code", "field"), HOSTILE)
async def test_hostile_input_is_a_4xx_in_the_error_format_that_changes_nothing(
    client: ApiClient,
    ctx: AppContext,
    world: World,
    request_: Send,
    status: int,
    code: str,
    field: str | None,
) -> None:
    before = await row_counts(ctx)
    response = await request_(client, world)
    assert response.status == status, response.body[:300]
    error = response.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert field in error["fields"], error
    assert_security_headers(response.headers)
    assert await row_counts(ctx) == before


async def test_an_order_id_of_19_digits_on_the_orders_channel_closes_with_4400(
    client: ApiClient, world: World
) -> None:
    async with open_socket(
        client, "/ws/orders", token=world.shopper.token, order=TOO_LONG_ID
    ) as socket:
        assert await close_code(socket) == 4400


# --- HEAD and Allow on every route -------------------------------------------------------

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND")
# What HEAD must answer exactly as GET does (X-Request-ID and Date differ by nature).
REPRESENTATION = ("Content-Type", "Content-Length", "Etag", "Content-Security-Policy")
# Counts every request, so its body grows between the GET and the HEAD.
CHANGING = {"ops:metrics"}


async def route_urls(client: ApiClient, ctx: AppContext, world: World) -> dict[str, str]:
    """Route name -> a URL of it, every path parameter filled with something that exists."""
    discount = await add_discount(ctx)
    review = await client.post(
        "catalog:product-reviews",
        "brass-lamp",
        json={"rating": 5, "title": "Bright"},
        token=world.shopper.token,
    )
    samples = {
        "slug": "brass-lamp",
        "order_id": str(world.order_id),
        "discount_id": str(discount.id),
        "review_id": str(review.json()["id"]),
        "user_id": str(world.shopper.user.id),
    }
    urls = {}
    for name, rule in client.app.wildcard_router.named_rules.items():
        pattern = rule.matcher.regex
        names = sorted(pattern.groupindex, key=pattern.groupindex.__getitem__)
        args = [samples[group] for group in names] or ["swagger-ui.css"] * pattern.groups
        urls[name] = client.url(name, *args)
    return urls


async def fetch(client: ApiClient, method: str, url: str, token: str | None) -> Response:
    response = await client.http.fetch(
        url,
        method=method,
        headers={"Authorization": f"Bearer {token}"} if token else None,
        body=b"" if method in {"POST", "PUT", "PATCH"} else None,
        allow_nonstandard_methods=True,
        raise_error=False,
    )
    return Response(response.code, response.headers, response.body or b"")


async def test_every_get_answers_head_and_every_405_lists_the_methods_in_allow(
    client: ApiClient, ctx: AppContext, world: World
) -> None:
    urls = await route_urls(client, ctx, world)
    assert {"ops:health", "catalog:product", "orders:detail", "ws:orders"} <= set(urls)
    for name, url in urls.items():
        # Reads as staff; anything else anonymous, so that nothing is changed.
        answers = {
            method: await fetch(
                client, method, url, world.staff.token if method in {"GET", "HEAD"} else None
            )
            for method in METHODS
        }
        allowed = {method for method, answer in answers.items() if answer.status != 405}
        assert ("GET" in allowed) == ("HEAD" in allowed), name
        assert {"OPTIONS", "TRACE", "PROPFIND"}.isdisjoint(allowed), name
        for method, answer in answers.items():
            if answer.status == 405:
                assert set(answer.headers["Allow"].split(", ")) == allowed, (name, method)
                assert_security_headers(answer.headers)
                if method != "HEAD":  # which has no body
                    assert answer.error_code == "method_not_allowed"
        if "GET" in allowed:
            get, head = answers["GET"], answers["HEAD"]
            assert head.status == get.status, name
            assert head.body == b"", name
            compared = REPRESENTATION if name not in CHANGING else ("Content-Type",)
            for header in compared:
                assert head.headers.get(header) == get.headers.get(header), (name, header)


# --- verification mails ------------------------------------------------------------------


async def mails_to(ctx: AppContext, recipient: str) -> int:
    async with ctx.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).where(OutboxMessage.recipient == recipient)
        )
    return int(count or 0)


async def resend(client: ApiClient, email: str) -> Response:
    return await client.post("auth:resend-verification", json={"email": email})


@pytest.mark.settings(
    resend_verification_rate_limit="3/hour", resend_verification_ip_rate_limit="100/hour"
)
async def test_verification_mails_are_limited_per_address_known_or_not(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_user(ctx, "new@example.com", verified=False)  # its first mail
    known = [await resend(client, "New@Example.com") for _ in range(30)]
    unknown = [await resend(client, "nobody@example.com") for _ in range(30)]
    assert [r.status for r in known] == [r.status for r in unknown] == [202] * 3 + [429] * 27
    assert [r.body for r in known[:3]] == [r.body for r in unknown[:3]]
    refused = known[-1]
    assert refused.error_code == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    assert await mails_to(ctx, "new@example.com") == 1 + 3
    assert await count_rows(ctx, OutboxMessage) == 1 + 3


@pytest.mark.settings(
    resend_verification_rate_limit="3/hour", resend_verification_ip_rate_limit="10/hour"
)
async def test_verification_mails_are_limited_per_client_ip(client: ApiClient) -> None:
    answers = [await resend(client, f"someone{number}@example.com") for number in range(11)]
    assert [answer.status for answer in answers] == [202] * 10 + [429]
    assert answers[-1].error_code == "rate_limited"
    assert int(answers[-1].headers["Retry-After"]) > 0
