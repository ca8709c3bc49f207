"""Everything a running instance shares: built once by the entry point
(`app.context.create_context`) or a test, then passed to the handlers through
`initialize()` and to periodic tasks as arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.after_commit import AfterCommit
from core.cache import ResponseCache
from core.config import Settings
from core.direct import Transactions
from core.hub import Hub
from core.mail import MailBackend
from core.metrics import Metrics
from core.payments import PaymentGateway
from core.ratelimit import RateLimiter
from core.sockets import OpenSockets


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    transactions: Transactions  # sessionless ones, for checkout (core/direct/)
    cache: ResponseCache
    hub: Hub[Any]  # of schemas/events.py's Event, which this layer cannot name
    after_commit: AfterCommit
    limiter: RateLimiter
    metrics: Metrics
    mailer: MailBackend
    redis: Redis | None
    payments: PaymentGateway | None = None  # None when no PAYMENTS_BACKEND is configured
    sockets: OpenSockets = field(default_factory=OpenSockets)
    requests_in_flight: int = 0  # counted by BaseHandler, awaited at shutdown

    async def start(self) -> None:
        """Connect what runs in the background (the Redis subscriptions of the hub's
        broker and of the cache)."""
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
