"""Catalog test data, made through the catalog services as staff would make it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from core.context import AppContext
from models.catalog import Category, Discount, Product
from schemas.catalog import CategoryIn, ProductIn
from schemas.discounts import DiscountIn
from services import catalog, discounts
from tests.client import Response


async def create_category(ctx: AppContext, name: str = "Lighting") -> Category:
    async with ctx.sessionmaker() as session:
        return await catalog.create_category(
            session, publisher=ctx.after_commit, data=CategoryIn(name=name)
        )


async def create_product(
    ctx: AppContext,
    name: str = "Brass Desk Lamp",
    *,
    price: str = "19.99",
    stock: int = 5,
    category: Category | None = None,
    is_active: bool = True,
    description: str = "",
) -> Product:
    data = ProductIn.model_validate(
        {
            "name": name,
            "price": price,
            "stock": stock,
            "category": category.slug if category else None,
            "is_active": is_active,
            "description": description,
        }
    )
    async with ctx.sessionmaker() as session:
        return await catalog.create_product(session, publisher=ctx.after_commit, data=data)


async def create_discount(
    ctx: AppContext,
    code: str = "SAVE10",
    *,
    kind: str = "percent",
    value: int | str = 10,
    category: Category | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    max_uses: int | None = None,
    min_order_total: str = "0.00",
    is_active: bool = True,
) -> Discount:
    data = DiscountIn(
        code=code,
        kind=kind,
        value=Decimal(value),
        category=category.slug if category else None,
        starts_at=starts_at,
        ends_at=ends_at,
        max_uses=max_uses,
        min_order_total=min_order_total,
        is_active=is_active,
    )
    async with ctx.sessionmaker() as session:
        return await discounts.create_discount(session, data=data)


@contextmanager
def recorded_queries(ctx: AppContext) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(ctx.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(ctx.engine.sync_engine, "before_cursor_execute", record)


async def served_from_cache(ctx: AppContext, fetch: Any) -> Response:
    """Fetch twice; the second answer must be the first one, with no database query."""
    first = await fetch()
    assert first.status == 200, first.body
    with recorded_queries(ctx) as statements:
        second: Response = await fetch()
    assert statements == []
    assert second.json() == first.json()
    return second
