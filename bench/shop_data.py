"""Benchmark data made in the measuring process through the services (not the API):
products, shoppers with access tokens, filled carts and orders moved along.

Only the shoppers are rows written directly: the accounts service would hash a password
per account (tens of milliseconds each), and these accounts never log in. Their access
tokens are signed with the server's SECRET_KEY, as a login would sign them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TypeVar

from app.context import create_context
from core.config import Settings
from core.context import AppContext
from core.payments import FakeGateway
from core.security import create_access_token, hash_password
from models.accounts import User
from schemas.catalog import ProductIn
from services import cart, catalog, checkout, orders, payments

T = TypeVar("T")
# Transactions the setup runs side by side.
SETUP_CONCURRENCY = 8
TOKEN_TTL = 3600
ADDRESS = {
    "name": "Ada Buyer",
    "line1": "1 Long Street",
    "city": "Leeds",
    "postal_code": "LS1 1AA",
    "country": "GB",
}


@asynccontextmanager
async def shop_context(env: dict[str, str]) -> AsyncIterator[AppContext]:
    """The services' context for the server configured by `env` (no Redis: what the
    setup publishes has no listener)."""
    settings = Settings(
        database_url=env["DATABASE_URL"], secret_key=env["SECRET_KEY"], log_level="WARNING"
    )
    ctx = create_context(settings)
    try:
        yield ctx
    finally:
        await ctx.close()


async def side_by_side(jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run `jobs`, SETUP_CONCURRENCY at a time; their results in order."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


async def add_products(ctx: AppContext, stocks: Sequence[int]) -> list[str]:
    """One product per entry of `stocks`, with that stock; their slugs."""

    async def create(number: int, stock: int) -> str:
        async with ctx.sessionmaker() as session:
            data = ProductIn(name=f"Bench Item {number}", price="4.99", stock=stock)
            product = await catalog.create_product(session, publisher=ctx.after_commit, data=data)
        return product.slug

    return await side_by_side(
        partial(create, number, stock) for number, stock in enumerate(stocks, start=1)
    )


async def add_shoppers(ctx: AppContext, count: int) -> list[tuple[User, str]]:
    """`count` verified shoppers (not staff) and an access token for each."""
    password_hash = await hash_password("bench-" + "x" * 12)
    users = [
        User(
            email=f"shopper{number}@bench.example",
            password_hash=password_hash,
            email_verified=True,
        )
        for number in range(count)
    ]
    async with ctx.sessionmaker() as session, session.begin():
        session.add_all(users)
    key = ctx.settings.signing_key
    return [(user, create_access_token(user_id=user.id, key=key, ttl=TOKEN_TTL)) for user in users]


async def fill_cart(ctx: AppContext, user: User, lines: Iterable[tuple[str, int]]) -> None:
    """Add (slug, quantity) `lines` to the user's cart."""
    async with ctx.sessionmaker() as session:
        for slug, quantity in lines:
            await cart.add_item(session, user_id=user.id, slug=slug, quantity=quantity)


async def place_order(ctx: AppContext, user: User, slug: str) -> list[int]:
    """One unit of `slug` ordered by `user`, paid, then moved to processing and
    shipped: the ids of the order's four status events, oldest first."""
    await fill_cart(ctx, user, [(slug, 1)])
    placed = await checkout.create_order_from_cart(
        ctx.transactions, publisher=ctx.after_commit, user_id=user.id, shipping_address=ADDRESS
    )
    order_id = placed.order.id
    async with ctx.sessionmaker() as session:
        await payments.start_payment(
            session,
            publisher=ctx.after_commit,
            order_id=order_id,
            user=user,
            gateway=FakeGateway(),
        )
        for status in ("processing", "shipped"):
            await orders.update_status(
                session, publisher=ctx.after_commit, order_id=order_id, status=status
            )
        timeline = await orders.get_order_events(session, order_id=order_id, user=user)
    return [event.id for event in timeline]
