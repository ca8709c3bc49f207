"""Everything a running instance shares: built once in main() (or a test), then passed
to the handlers through `initialize()` and to periodic tasks as arguments."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cache import ResponseCache, make_cache
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.events import Hub, InProcessHub
from app.mail import MailBackend, make_mail_backend
from app.metrics import Metrics
from app.ratelimit import RateLimiter, make_storage
from app.services.payments import StripeGateway, make_stripe_gateway


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: ResponseCache
    hub: Hub
    limiter: RateLimiter
    metrics: Metrics
    mailer: MailBackend
    redis: Redis | None
    stripe: StripeGateway | None = None  # None when STRIPE_SECRET_KEY is unset

    async def close(self) -> None:
        await self.hub.close()
        await self.cache.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
        if self.stripe is not None:
            await self.stripe.close()


def create_context(settings: Settings) -> AppContext:
    """Build the shared parts; nothing connects until first used."""
    engine = make_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    return AppContext(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        cache=ResponseCache(make_cache(settings.redis_url), ttl=settings.cache_ttl),
        hub=InProcessHub(),
        limiter=RateLimiter(make_storage(redis)),
        metrics=Metrics(),
        mailer=make_mail_backend(settings),
        redis=redis,
        stripe=make_stripe_gateway(settings),
    )
