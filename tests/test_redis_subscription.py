"""The pub/sub loop every Redis subscriber shares (core/redis_subscription.py), and the
hub's broker built on it (core/broker.py): hooks, backoff, re-subscription, and events
between two hubs on one Redis. Each test runs a private redis-server of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from structlog.testing import capture_logs

from core.broker import RedisBroker
from core.hub import Codec, Hub
from core.metrics import Metrics
from core.redis_health import RedisHealth, fail_fast_options
from core.redis_subscription import RedisSubscription, shared_channel
from models.base import utcnow
from schemas.events import (
    CHANNELS,
    INVENTORY_CHANNEL,
    Event,
    StockChanged,
    decode_event,
    encode_event,
)

# Fixture "redis_server": a private Redis the test may kill or restart.
from tests.processes import (  # noqa: F401 (fixtures)
    RedisServer,
    poll,
    redis_server_fixture,
)

WAIT_SECONDS = 10.0


class Hooks:
    """What a subscription reported, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.lost_at: list[float] = []

    def message(self, data: bytes) -> None:
        self.calls.append(("message", data))

    def subscribed(self) -> None:
        self.calls.append(("subscribed", None))

    def lost(self, error: Exception | None) -> None:
        self.calls.append(("lost", type(error).__name__ if error else None))
        self.lost_at.append(time.monotonic())

    def reconnected(self) -> None:
        self.calls.append(("reconnected", None))

    def count(self, hook: str) -> int:
        return sum(1 for name, _ in self.calls if name == hook)


def client(server: RedisServer) -> Redis:
    """A client set up as the app's are (one retry on a fresh connection)."""
    return Redis.from_url(server.url, **fail_fast_options())


@asynccontextmanager
async def running(subscription: RedisSubscription) -> AsyncIterator[RedisSubscription]:
    subscription.start()
    try:
        yield subscription
    finally:
        await subscription.close()


async def until(check: Callable[[], bool], failure: str) -> None:
    async def checked() -> bool:
        return check()

    await poll(checked, timeout=WAIT_SECONDS, failure=failure)


def test_channel_names_carry_the_database_of_the_redis_url() -> None:
    assert shared_channel(Redis.from_url("redis://127.0.0.1:6379/12"), "cache") == "shop:12:cache"
    assert shared_channel(Redis.from_url("redis://127.0.0.1:6379"), "events:") == "shop:0:events:"


async def test_messages_reach_on_message_once_subscribed(redis_server: RedisServer) -> None:
    redis, hooks = client(redis_server), Hooks()
    subscription = RedisSubscription(
        redis, ["a", "b"], hooks.message, on_subscribed=hooks.subscribed, on_lost=hooks.lost
    )
    async with running(subscription):
        await asyncio.wait_for(subscription.subscribed.wait(), WAIT_SECONDS)
        await redis.publish("a", b"first")
        await redis.publish("c", b"not subscribed")
        await redis.publish("b", b"second")
        await until(lambda: hooks.count("message") == 2, "messages not heard")
    assert hooks.calls == [
        ("subscribed", None),
        ("message", b"first"),
        ("message", b"second"),
        ("lost", None),  # closed
    ]
    assert not subscription.subscribed.is_set()
    await redis.aclose()


async def test_after_a_failure_it_backs_off_and_subscribes_again(
    redis_server: RedisServer,
) -> None:
    redis, hooks = client(redis_server), Hooks()
    subscription = RedisSubscription(
        redis,
        ["a"],
        hooks.message,
        on_subscribed=hooks.subscribed,
        on_lost=hooks.lost,
        first_retry=0.05,
        max_retry=0.2,
    )
    async with running(subscription):
        await asyncio.wait_for(subscription.subscribed.wait(), WAIT_SECONDS)
        redis_server.kill()
        await until(lambda: hooks.count("lost") >= 6, "the failures were not reported")
        assert not subscription.subscribed.is_set()
        assert all(error == "ConnectionError" for name, error in hooks.calls if name == "lost")
        gaps = [later - earlier for earlier, later in zip(hooks.lost_at, hooks.lost_at[1:])]
        # 0.05 s after the first failure, then doubling, then at most 0.2 s (plus the
        # time a refused connection takes, and a busy machine's delays).
        for gap, backoff in zip(gaps, [0.05, 0.1, 0.2, 0.2, 0.2]):
            assert gap >= backoff * 0.9, gaps
        assert min(gaps[2:5]) < 1.0, "capped at max_retry"
        await redis_server.start_and_wait()
        await asyncio.wait_for(subscription.subscribed.wait(), WAIT_SECONDS)
        assert hooks.count("subscribed") == 2
        await redis.publish("a", b"after the restart")
        await until(lambda: hooks.count("message") == 1, "no message after re-subscribing")
    await redis.aclose()


async def test_a_silent_reconnection_by_redis_py_calls_on_reconnected(
    redis_server: RedisServer,
) -> None:
    redis, hooks = client(redis_server), Hooks()
    subscription = RedisSubscription(
        redis,
        ["a"],
        hooks.message,
        on_subscribed=hooks.subscribed,
        on_lost=hooks.lost,
        on_reconnected=hooks.reconnected,
    )
    async with running(subscription):
        await asyncio.wait_for(subscription.subscribed.wait(), WAIT_SECONDS)
        other = Redis.from_url(redis_server.url)
        await other.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await other.aclose()
        await until(lambda: hooks.count("reconnected") == 1, "the reconnection went unnoticed")
        # redis-py reconnected and subscribed again by itself (its one retry): the loop
        # saw no failure, but messages published meanwhile may have been missed.
        assert hooks.calls == [("subscribed", None), ("reconnected", None)]
        assert subscription.subscribed.is_set()
        await redis.publish("a", b"still heard")
        await until(lambda: hooks.count("message") == 1, "no message after the reconnection")
    await redis.aclose()


def stock(level: int) -> StockChanged:
    return StockChanged(product="brass-lamp", stock=level, in_stock=level > 0, at=utcnow())


def levels_into(levels: list[int]) -> Callable[[Event], None]:
    """A listener that keeps the stock level of each inventory event it hears."""

    def listen(event: Event) -> None:
        assert isinstance(event, StockChanged)
        levels.append(event.stock)

    return listen


@asynccontextmanager
async def hub_on(server: RedisServer) -> AsyncIterator[tuple[Hub[Event], RedisBroker]]:
    redis = client(server)
    broker = RedisBroker(redis, RedisHealth(Metrics()), channels=CHANNELS)
    hub: Hub[Event] = Hub(broker, Codec(encode=encode_event, decode=decode_event))
    await hub.start()
    try:
        yield hub, broker
    finally:
        await hub.close()
        await redis.aclose()


async def test_the_broker_carries_events_between_two_hubs_on_one_redis(
    redis_server: RedisServer,
) -> None:
    async with hub_on(redis_server) as (a, broker_a), hub_on(redis_server) as (b, broker_b):
        await asyncio.wait_for(broker_a.subscribed.wait(), WAIT_SECONDS)
        await asyncio.wait_for(broker_b.subscribed.wait(), WAIT_SECONDS)
        on_a: list[int] = []
        on_b: list[int] = []
        a.subscribe(INVENTORY_CHANNEL, levels_into(on_a))
        b.subscribe(INVENTORY_CHANNEL, levels_into(on_b))
        await a.publish(stock(3))
        await b.publish(stock(4))
        await until(lambda: len(on_a) == 2 and len(on_b) == 2, "events did not cross")
        # A's own 3, heard back from Redis, would reach A before B's later 5 does.
        await b.publish(stock(5))
        await until(lambda: 5 in on_a and 5 in on_b, "the marker did not cross")
        assert sorted(on_a) == sorted(on_b) == [3, 4, 5], "each event once in each process"


async def test_an_undecodable_payload_is_logged_and_dropped(redis_server: RedisServer) -> None:
    async with hub_on(redis_server) as (hub, broker):
        await asyncio.wait_for(broker.subscribed.wait(), WAIT_SECONDS)
        heard: list[int] = []
        hub.subscribe(INVENTORY_CHANNEL, levels_into(heard))
        redis = client(redis_server)
        channel = shared_channel(redis, "events:") + INVENTORY_CHANNEL
        with capture_logs() as logs:
            await redis.publish(channel, b"someone-else {not an event")
            await redis.publish(channel, b"someone-else " + encode_event(stock(5)))
            await until(lambda: heard == [5], "the valid event after it was not delivered")
        assert [entry["event"] for entry in logs] == ["event_undecodable"]
        await redis.aclose()


async def test_an_outage_logs_one_warning_and_delivery_resumes(
    redis_server: RedisServer,
) -> None:
    with capture_logs() as logs:
        async with hub_on(redis_server) as (a, broker_a), hub_on(redis_server) as (b, broker_b):
            await asyncio.wait_for(broker_b.subscribed.wait(), WAIT_SECONDS)
            on_a: list[int] = []
            on_b: list[int] = []
            a.subscribe(INVENTORY_CHANNEL, levels_into(on_a))
            b.subscribe(INVENTORY_CHANNEL, levels_into(on_b))
            redis_server.kill()
            await until(lambda: not broker_b.subscribed.is_set(), "the outage went unnoticed")
            for level in range(3):
                await a.publish(stock(level))  # delivered locally all the same
            await until(lambda: on_a == [0, 1, 2], "local delivery stopped")
            await redis_server.start_and_wait()
            await asyncio.wait_for(broker_a.subscribed.wait(), WAIT_SECONDS)
            await asyncio.wait_for(broker_b.subscribed.wait(), WAIT_SECONDS)

            async def crossed() -> bool:
                await a.publish(stock(9))
                await asyncio.sleep(0.1)
                return 9 in on_b

            await poll(crossed, timeout=WAIT_SECONDS, failure="delivery did not resume")
    events = [entry["event"] for entry in logs]
    assert events.count("redis_events_unavailable") == 2, "one per process"
    assert events.count("redis_events_resumed") == 2
