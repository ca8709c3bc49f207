"""One Redis pub/sub subscription, held for as long as it runs: the loop every Redis
subscriber of this process shares (the events broker, core/broker.py, and the response
cache's invalidations, core/cache.py).

It subscribes, hands every message to `on_message`, and when Redis fails it says so and
subscribes again, waiting FIRST_RETRY seconds and doubling up to MAX_RETRY, so a
Redis that stays away costs little. Its users only say what a message, a subscription
made, one lost and a silent reconnection mean to them. The channel names come from
`shared_channel`, which keeps apart the shops using other databases of one Redis server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection

from core.redis_health import REDIS_ERRORS

# Seconds between attempts to subscribe again while Redis is away: doubling up to the cap.
FIRST_RETRY, MAX_RETRY = 0.1, 5.0
# How long one wait for a message lasts before the loop looks again.
POLL_SECONDS = 1.0


def shared_channel(redis: Redis, name: str) -> str:
    """The pub/sub channel `name` of this shop. Channels are shared by every database of
    a Redis server: the name carries REDIS_URL's database, so shops on its other
    databases are not heard."""
    database = redis.connection_pool.connection_kwargs.get("db", 0)
    return f"shop:{database}:{name}"


def _nothing() -> None:
    """The default hook."""


class RedisSubscription:
    """A subscription to `channels`, made again after every failure, until `close()`.

    Hooks, all called from the subscription's task and none allowed to block:
    `on_message(data)` for every message; `on_subscribed()` each time the subscription
    is made (again), after which `subscribed` is set; `on_lost(error)` each time an
    attempt ends, subscribed or not, with the Redis error that ended it (another attempt
    follows after the backoff), or None when the loop stops (closed, or an unexpected
    error), `subscribed` cleared first; `on_reconnected()` when redis-py has
    reconnected and subscribed again by itself, so that messages published meanwhile
    went unheard (without it, no callback is registered with the connection).
    """

    def __init__(
        self,
        redis: Redis,
        channels: Sequence[str],
        on_message: Callable[[bytes], None],
        *,
        on_subscribed: Callable[[], None] = _nothing,
        on_lost: Callable[[Exception | None], None] = lambda error: None,
        on_reconnected: Callable[[], None] | None = None,
        first_retry: float = FIRST_RETRY,
        max_retry: float = MAX_RETRY,
    ) -> None:
        self._redis = redis
        self.channels = tuple(channels)
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._on_lost = on_lost
        self._on_reconnected = on_reconnected
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # set while the subscription is live

    def start(self) -> None:
        """Run the loop in a task of its own."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop the loop (and unsubscribe)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        retry = self._first_retry
        while True:
            failure: Exception | None = None
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(*self.channels)
                    retry = self._first_retry
                    await self._hold(pubsub)
            except REDIS_ERRORS as error:
                failure = error
            finally:
                self.subscribed.clear()
                self._on_lost(failure)
            await asyncio.sleep(retry)
            retry = min(retry * 2, self._max_retry)

    async def _hold(self, pubsub: PubSub) -> None:
        """Hand over every message until the subscription fails."""
        connection = pubsub.connection
        # subscribe() has connected; the assert only narrows the type.
        assert connection is not None  # nosec B101
        if self._on_reconnected is not None:
            # A method: redis-py keeps a weak reference to it.
            connection.register_connect_callback(self._reconnected)
        try:
            self.subscribed.set()
            self._on_subscribed()
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=POLL_SECONDS
                )
                if message is not None:
                    self._on_message(message["data"])
        finally:
            if self._on_reconnected is not None:
                connection.deregister_connect_callback(self._reconnected)

    def _reconnected(self, _connection: Connection) -> None:
        if self._on_reconnected is not None:
            self._on_reconnected()
