"""Test data for checkout: catalog rows, shoppers with tokens, carts and orders."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from core.context import AppContext
from core.security import create_access_token
from models.accounts import User
from models.base import utcnow
from models.catalog import Category, Discount, Product
from models.orders import Order, OrderEvent
from schemas.common import cents_to_str
from tests.catalog_factories import create_category, create_discount, create_product
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
    return await create_category(ctx, slug.title())


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
    """A product made by the catalog service, named after its slug ("Brass Lamp").
    The API sells in USD only; another `currency` is set on the row afterwards."""
    name = slug.replace("-", " ").title()
    product = await create_product(
        ctx,
        name,
        price=cents_to_str(price_cents),
        stock=stock,
        category=category,
        is_active=is_active,
    )
    assert product.slug == slug
    if currency != product.currency:
        async with ctx.sessionmaker() as session, session.begin():
            product = await session.merge(product)
            product.currency = currency
    return product


async def add_discount(
    ctx: AppContext,
    code: str = "SAVE10",
    *,
    kind: str = "percent",
    value: int = 10,
    used_count: int = 0,
    min_order_total_cents: int = 0,
    **details: Any,
) -> Discount:
    """A discount made by the discounts service; `value` is a percent or, for "fixed",
    cents. `used_count` stands for earlier orders that used it."""
    discount = await create_discount(
        ctx,
        code,
        kind=kind,
        value=value if kind == "percent" else cents_to_str(value),
        min_order_total=cents_to_str(min_order_total_cents),
        **details,
    )
    if used_count:
        async with ctx.sessionmaker() as session, session.begin():
            await session.execute(
                update(Discount).where(Discount.id == discount.id).values(used_count=used_count)
            )
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


async def shopper_with_cart(
    client: ApiClient, ctx: AppContext, quantity: int = 1, **product: Any
) -> LoggedIn:
    """A shopper whose cart holds `quantity` "brass-lamp" (made by add_product with
    `product`, e.g. stock=5)."""
    await add_product(ctx, **product)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": quantity})
    return buyer


async def placed_order(
    client: ApiClient, ctx: AppContext, quantity: int = 1, **product: Any
) -> tuple[LoggedIn, dict[str, Any]]:
    """A shopper and their order, as shopper_with_cart's cart ordered."""
    buyer = await shopper_with_cart(client, ctx, quantity, **product)
    response = await place_order(client, buyer.token)
    assert response.status == 201, response.body
    return buyer, response.json()
