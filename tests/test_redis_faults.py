"""Redis is an accelerator, never a single point of failure (docs/api.md): with the app's
Redis killed, frozen or restarted, every request still answers, and caching and shared
rate limits come back by themselves.

Each test gets a private redis-server of its own (never the shared one) and kills,
freezes (SIGSTOP) or restarts it while the app serves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from core.config import Settings
from core.context import AppContext
from core.redis_health import COOL_DOWN_SECONDS, RedisHealth
from tests.catalog_factories import create_product, recorded_queries, served_from_cache
from tests.client import ApiClient, Response
from tests.conftest import build_settings
from tests.factories import DEFAULT_PASSWORD, create_user, log_in
from tests.order_factories import place_order, shopper_with_cart, stock_of

# Fixture "redis_server": a private Redis the test may kill, freeze or restart.
from tests.processes import (  # noqa: F401 (fixtures)
    RedisServer,
    poll,
    redis_server_fixture,  # noqa: F401
)

# What "a short bounded time" means for one request while Redis hangs.
pytestmark = pytest.mark.subprocess  # a private redis-server per test
REQUEST_BOUND_SECONDS = 3.0
RECOVERY_SECONDS = 10.0

Fetch = Callable[[], Awaitable[Response]]


@pytest.fixture
def settings(database_url: str, redis_server: RedisServer) -> Settings:
    """The app's settings, pointed at the test's private Redis."""
    return build_settings(database_url, {"redis_url": redis_server.url})


async def timed(request: Awaitable[Response]) -> tuple[Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def until_served_from_cache(ctx: AppContext, fetch: Fetch) -> list[Response]:
    """Fetch until an answer needs no database query (the cache uses Redis again once
    it answers and the cool-down is over); every answer, in order."""
    answers: list[Response] = []

    async def from_cache() -> bool:
        with recorded_queries(ctx) as statements:
            answers.append(await fetch())
        assert answers[-1].status == 200, answers[-1].body
        return statements == []

    await poll(from_cache, timeout=RECOVERY_SECONDS, failure="the cache was not used again")
    return answers


def login(client: ApiClient, email: str, password: str = DEFAULT_PASSWORD) -> Awaitable[Response]:
    return client.post("auth:login", json={"email": email, "password": password})


def failures(ctx: AppContext, use: str) -> float:
    value = ctx.metrics.registry.get_sample_value("shop_redis_failures_total", {"use": use})
    return value or 0.0


async def test_with_redis_down_the_catalog_is_read_from_the_database_and_edits_show(
    client: ApiClient, ctx: AppContext, redis_server: RedisServer
) -> None:
    await create_product(ctx, "Brass Desk Lamp", price="10.00")
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    await served_from_cache(ctx, lambda: client.get("catalog:product", "brass-desk-lamp"))
    redis_server.kill()

    listing = await client.get("catalog:products")
    assert listing.status == 200, listing.body
    assert [(p["slug"], p["price"]) for p in listing.json()["results"]] == [
        ("brass-desk-lamp", "10.00")
    ]
    assert (await client.get("catalog:categories")).status == 200
    changed = await client.patch(
        "catalog:product", "brass-desk-lamp", json={"price": "12.00"}, token=staff.token
    )
    assert changed.status == 200, changed.body
    detail = await client.get("catalog:product", "brass-desk-lamp")
    assert detail.status == 200, detail.body
    assert detail.json()["price"] == "12.00"


async def test_with_redis_down_login_works_and_its_limit_counts_in_process(
    client: ApiClient, ctx: AppContext, redis_server: RedisServer
) -> None:
    await create_user(ctx, "ada@example.com")
    redis_server.kill()
    assert (await login(client, "ada@example.com")).status == 200
    wrong = [(await login(client, "ada@example.com", "not-her-password")).status for _ in range(5)]
    assert wrong == [401] * 5
    over = await login(client, "ada@example.com")  # 5 failures: LOGIN_RATE_LIMIT is 5/minute
    assert over.status == 429, over.body
    assert over.error_code == "rate_limited"
    assert int(over.headers["Retry-After"]) > 0


async def test_with_redis_down_checkout_answers_201_with_the_order(
    client: ApiClient, ctx: AppContext, redis_server: RedisServer
) -> None:
    buyer = await shopper_with_cart(client, ctx, 2, stock=5)
    redis_server.kill()
    response = await place_order(client, buyer.token)
    assert response.status == 201, response.body
    order = response.json()
    assert [(item["product"], item["quantity"]) for item in order["items"]] == [("brass-lamp", 2)]
    assert await stock_of(ctx, "brass-lamp") == 3
    assert (await client.get("catalog:product", "brass-lamp")).json()["stock"] == 3


async def test_when_redis_returns_caching_resumes_and_limits_are_shared_again(
    client: ApiClient, ctx: AppContext, redis_server: RedisServer
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    await create_user(ctx, "ada@example.com")
    redis_server.kill()
    assert (await client.get("catalog:products")).status == 200
    await redis_server.start_and_wait()

    await until_served_from_cache(ctx, lambda: client.get("catalog:products"))
    assert (await login(client, "ada@example.com", "not-her-password")).status == 401
    assert ctx.redis is not None
    assert await ctx.redis.keys("shop-limits*"), "the failed login was counted in Redis"


async def test_an_entry_cached_before_an_outage_is_not_served_after_a_write_during_it(
    client: ApiClient, ctx: AppContext, redis_server: RedisServer
) -> None:
    await create_product(ctx, "Brass Desk Lamp", price="10.00")
    staff = await log_in(client, ctx, "staff@example.com", staff=True)

    def fetch() -> Awaitable[Response]:
        return client.get("catalog:product", "brass-desk-lamp")

    await served_from_cache(ctx, fetch)
    # A frozen Redis keeps the entry. Once a read has found it hung, the edit comes within
    # the cool-down: its invalidation never reaches Redis.
    with redis_server.frozen():
        assert (await fetch()).json()["price"] == "10.00"
        changed = await client.patch(
            "catalog:product", "brass-desk-lamp", json={"price": "12.00"}, token=staff.token
        )
        assert changed.status == 200, changed.body
        assert (await fetch()).json()["price"] == "12.00"

    answers = await until_served_from_cache(ctx, fetch)
    assert [answer.json()["price"] for answer in answers] == ["12.00"] * len(answers)


async def test_a_frozen_redis_costs_one_bounded_wait_per_cool_down_not_per_request(
    client: ApiClient, ctx: AppContext, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[bool] = []  # each answer of the breaker: True when Redis is to be called
    should_try = RedisHealth.should_try

    def recorded(health: RedisHealth, use: str) -> bool:
        tries.append(should_try(health, use))
        return tries[-1]

    monkeypatch.setattr(RedisHealth, "should_try", recorded)
    await create_user(ctx, "ada@example.com")
    buyer = await shopper_with_cart(client, ctx, 1, stock=5)
    with redis_server.frozen():
        first, seconds = await timed(client.get("catalog:products"))
        assert first.status == 200, first.body
        assert seconds < REQUEST_BOUND_SECONDS

        # Within the cool-down nothing waits for Redis: none of these calls it (rather
        # than a bound on their time, which a loaded machine can exceed without Redis).
        tries.clear()
        for request, status in [
            (lambda: client.get("catalog:product", "brass-lamp"), 200),
            (lambda: login(client, "ada@example.com"), 200),
            (lambda: place_order(client, buyer.token), 201),
        ]:
            response, seconds = await timed(request())
            assert response.status == status, response.body
            assert True not in tries, f"Redis was called within the cool-down ({seconds:.2f} s)"

        # After it, one request tries Redis again, and waits no longer than the first.
        await asyncio.sleep(COOL_DOWN_SECONDS)  # the cool-down passing is the point here
        again, seconds = await timed(client.get("catalog:products"))
        assert again.status == 200, again.body
        assert seconds < REQUEST_BOUND_SECONDS


async def test_an_outage_logs_one_warning_and_counts_what_went_without_redis(
    client: ApiClient, ctx: AppContext, redis_server: RedisServer
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    await create_user(ctx, "ada@example.com")
    with capture_logs() as logs:
        redis_server.kill()
        for _ in range(3):
            assert (await client.get("catalog:products")).status == 200
            assert (await login(client, "ada@example.com")).status == 200
        await redis_server.start_and_wait()
        await until_served_from_cache(ctx, lambda: client.get("catalog:products"))

    [warning] = [line for line in logs if line["event"] == "redis_unavailable"]
    assert warning["log_level"] == "warning"
    assert [line["event"] for line in logs].count("redis_recovered") == 1
    assert not [line for line in logs if line["log_level"] in {"error", "critical"}]
    assert failures(ctx, "cache") >= 3
    assert failures(ctx, "limits") >= 3
