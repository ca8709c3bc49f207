"""Everything a running instance shares: built once in main() (or a test), then passed
to the handlers through `initialize()` and to periodic tasks as arguments."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.after_commit import AfterCommit
from app.cache import ResponseCache, make_cache
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.hub import Hub, make_hub
from app.mail import MailBackend, make_mail_backend
from app.metrics import Metrics
from app.ratelimit import RateLimiter, make_storage
from app.redis_health import RedisHealth, fail_fast_options
from app.services.payments import PaymentGateway, make_payment_gateway
from app.sql import Transactions
from app.sockets import OpenSockets


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    transactions: Transactions  # sessionless ones, for checkout (app/sql.py)
    cache: ResponseCache
    hub: Hub
    after_commit: AfterCommit
    limiter: RateLimiter
    metrics: Metrics
    mailer: MailBackend
    redis: Redis | None
    payments: PaymentGateway | None = None  # None when no PAYMENTS_BACKEND is configured
    sockets: OpenSockets = field(default_factory=OpenSockets)
    requests_in_flight: int = 0  # counted by BaseHandler, awaited at shutdown

    async def start(self) -> None:
        """Connect what runs in the background (the hub's and the cache's Redis
        subscriptions)."""
        await self.hub.start()
        await self.cache.start()

    async def close(self) -> None:
        await self.hub.close()
        await self.cache.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.transactions.close()
        await self.engine.dispose()
        if self.payments is not None:
            await self.payments.close()


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
    hub = make_hub(redis, redis_health)
    after_commit = AfterCommit(cache, hub)
    return AppContext(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(
            engine, timeout=settings.database_timeout, info=after_commit.session_info()
        ),
        transactions=Transactions(
            engine,
            timeout=settings.database_timeout,
            info=after_commit.session_info(),
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
