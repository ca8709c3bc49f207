"""Builds the shared parts of a running instance (`AppContext`) from its settings:
the one place that picks each adapter (database, cache, hub and its broker, mail,
payments) and gives the generic ones what they carry (the hub its events' codec)."""

from __future__ import annotations

from redis.asyncio import Redis

from core.after_commit import AfterCommit
from core.broker import RedisBroker
from core.cache import ResponseCache, make_cache
from core.config import Settings
from core.context import AppContext
from core.db import make_engine, make_sessionmaker
from core.direct import Transactions
from core.hub import Codec, Hub
from core.mail import make_mail_backend
from core.metrics import Metrics
from core.payments import make_payment_gateway
from core.ratelimit import RateLimiter, make_storage
from core.redis_health import RedisHealth, fail_fast_options
from schemas.events import CHANNELS, Event, decode_event, encode_event


def create_context(settings: Settings) -> AppContext:
    """Build the shared parts; nothing connects until first used (or `start()`)."""
    engine = make_engine(settings.database_url, timeout=settings.database_timeout)
    redis = make_redis(settings.redis_url) if settings.redis_url else None
    metrics = Metrics()
    redis_health = RedisHealth(metrics)  # one for the cache, the limiter and the hub
    cache = ResponseCache(
        make_cache(settings.redis_url),
        settings.cache_ttl,
        redis_health,
        redis=redis,
    )
    broker = RedisBroker(redis, redis_health, channels=CHANNELS) if redis is not None else None
    hub: Hub[Event] = Hub(broker, Codec(encode=encode_event, decode=decode_event))
    after_commit = AfterCommit(cache, hub)
    return AppContext(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine, timeout=settings.database_timeout),
        transactions=Transactions(
            engine,
            timeout=settings.database_timeout,
            pool_size=settings.checkout_pool_size,
        ),
        cache=cache,
        hub=hub,
        after_commit=after_commit,
        limiter=RateLimiter(make_storage(redis), redis_health),
        metrics=metrics,
        mailer=make_mail_backend(settings),
        redis=redis,
        payments=make_payment_gateway(settings),
    )


def make_redis(url: str) -> Redis:
    """A client that gives up on a Redis that does not answer, rather than hanging."""
    return Redis.from_url(url, **fail_fast_options())
