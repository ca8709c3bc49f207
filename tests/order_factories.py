"""Test data for checkout: catalog rows, shoppers with tokens, carts and orders."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from app.context import AppContext
from app.security import create_access_token
from models.accounts import User
from models.base import utcnow
from models.catalog import Category, Discount, Product
from models.orders import Order, OrderEvent
from tests.client import ApiClient, Response
from tests.factories import LoggedIn

ADDRESS = {
    "name": "Sam Shopper",
    "line1": "Hauptstrasse 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}


async def add_category(ctx: AppContext, slug: str = "lamps") -> Category:
    async with ctx.sessionmaker() as session, session.begin():
        category = Category(name=slug.title(), slug=slug)
        session.add(category)
    return category


async def add_product(
    ctx: AppContext,
    slug: str = "brass-lamp",
    *,
    price_cents: int = 1999,
    stock: int = 10,
    category: Category | None = None,
    currency: str = "USD",
    is_active: bool = True,
) -> Product:
    async with ctx.sessionmaker() as session, session.begin():
        product = Product(
            slug=slug,
            name=slug.replace("-", " ").title(),
            price_cents=price_cents,
            stock=stock,
            category_id=category.id if category else None,
            currency=currency,
            is_active=is_active,
        )
        session.add(product)
    return product


async def add_discount(
    ctx: AppContext,
    code: str = "SAVE10",
    *,
    kind: str = "percent",
    value: int = 10,
    category: Category | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    max_uses: int | None = None,
    used_count: int = 0,
    min_order_total_cents: int = 0,
) -> Discount:
    async with ctx.sessionmaker() as session, session.begin():
        discount = Discount(
            code=code.upper(),
            kind=kind,
            value=value,
            category_id=category.id if category else None,
            starts_at=starts_at,
            ends_at=ends_at,
            max_uses=max_uses,
            used_count=used_count,
            min_order_total_cents=min_order_total_cents,
        )
        session.add(discount)
    return discount


async def stock_of(ctx: AppContext, slug: str) -> int:
    async with ctx.sessionmaker() as session:
        stock = await session.scalar(select(Product.stock).where(Product.slug == slug))
    assert stock is not None, f"no product {slug}"
    return stock


async def shoppers(ctx: AppContext, count: int, *, prefix: str = "buyer") -> list[LoggedIn]:
    """Verified users with access tokens, made without password hashing (fast enough
    for dozens of concurrent buyers); their refresh tokens are not usable."""
    async with ctx.sessionmaker() as session, session.begin():
        users = [
            User(
                email=f"{prefix}{number}@example.com",
                password_hash="unusable",  # nosec B106: these users never log in
                full_name=f"Buyer {number}",
                email_verified=True,
            )
            for number in range(count)
        ]
        session.add_all(users)
    key, ttl = ctx.settings.signing_key, ctx.settings.access_token_ttl
    return [
        LoggedIn(
            user=user,
            token=create_access_token(user_id=user.id, key=key, ttl=ttl),
            refresh_token="",
        )
        for user in users
    ]


async def shopper(ctx: AppContext, name: str = "shopper") -> LoggedIn:
    [buyer] = await shoppers(ctx, 1, prefix=name)
    return buyer


async def fill_cart(client: ApiClient, token: str, lines: dict[str, int]) -> None:
    for slug, quantity in lines.items():
        response = await client.post(
            "cart:items", json={"product": slug, "quantity": quantity}, token=token
        )
        assert response.status == 201, response.body


async def place_order(
    client: ApiClient,
    token: str,
    *,
    discount_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"shipping_address": ADDRESS}
    if discount_code is not None:
        body["discount_code"] = discount_code
    return await client.post("orders:list", json=body, token=token, headers=headers)


async def ordered(client: ApiClient, token: str, lines: dict[str, int]) -> dict[str, Any]:
    """Fill the cart with `lines` and order it; the order as the API returned it."""
    await fill_cart(client, token, lines)
    response = await place_order(client, token)
    assert response.status == 201, response.body
    order: dict[str, Any] = response.json()
    return order


async def set_order_status(ctx: AppContext, order_id: int, status: str) -> None:
    """Put an order straight into `status`, as if its earlier steps had happened."""
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(Order).where(Order.id == order_id).values(status=status))


async def order_row(ctx: AppContext, order_id: int) -> Order:
    async with ctx.sessionmaker() as session:
        order = await session.get(Order, order_id)
    assert order is not None
    return order


async def timeline(ctx: AppContext, order_id: int) -> list[str]:
    async with ctx.sessionmaker() as session:
        statuses = await session.scalars(
            select(OrderEvent.status).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        )
        return list(statuses.all())


def ago(**delta: float) -> datetime:
    return utcnow() - timedelta(**delta)
