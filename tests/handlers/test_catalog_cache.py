"""Catalog responses come from the cache until a write changes what they show."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import AppContext
from models.base import utcnow
from models.catalog import Product
from schemas.events import INVENTORY_CHANNEL
from services.inventory import stock_events
from store.stock import StockLevel
from tests.catalog_factories import (
    create_category,
    create_product,
    recorded_queries,
    served_from_cache,
)
from tests.client import ApiClient
from tests.events import hear
from tests.factories import log_in


async def test_a_repeated_product_list_is_served_from_the_cache(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    await served_from_cache(
        ctx, lambda: client.get("catalog:products", query="q=lamp&ordering=name&page_size=5")
    )
    with recorded_queries(ctx) as statements:
        same_query = await client.get(
            "catalog:products", query="page_size=5&ordering=name&q=lamp&page=1"
        )
    assert statements == [], "the key is canonical: order and defaults do not matter"
    assert [p["slug"] for p in same_query.json()["results"]] == ["brass-desk-lamp"]


async def test_product_detail_and_categories_are_served_from_the_cache(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_category(ctx, "Lighting")
    await create_product(ctx, "Brass Desk Lamp")
    await served_from_cache(ctx, lambda: client.get("catalog:product", "brass-desk-lamp"))
    await served_from_cache(ctx, lambda: client.get("catalog:categories"))


async def test_a_product_change_shows_at_once(client: ApiClient, ctx: AppContext) -> None:
    await create_product(ctx, "Brass Desk Lamp", price="10.00")
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    await served_from_cache(ctx, lambda: client.get("catalog:products"))
    await served_from_cache(ctx, lambda: client.get("catalog:product", "brass-desk-lamp"))
    changed = await client.patch(
        "catalog:product", "brass-desk-lamp", json={"price": "12.00"}, token=staff.token
    )
    assert changed.status == 200
    assert (await client.get("catalog:products")).json()["results"][0]["price"] == "12.00"
    assert (await client.get("catalog:product", "brass-desk-lamp")).json()["price"] == "12.00"


async def test_new_and_deleted_products_show_at_once(client: ApiClient, ctx: AppContext) -> None:
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    await served_from_cache(ctx, lambda: client.get("catalog:products"))
    created = await client.post(
        "catalog:products", json={"name": "Paper Lamp", "price": "5.00"}, token=staff.token
    )
    assert created.status == 201
    assert (await client.get("catalog:products")).json()["count"] == 1
    await served_from_cache(ctx, lambda: client.get("catalog:product", "paper-lamp"))
    assert (await client.delete("catalog:product", "paper-lamp", token=staff.token)).status == 204
    assert (await client.get("catalog:products")).json()["count"] == 0
    assert (await client.get("catalog:product", "paper-lamp")).status == 404


async def test_a_category_change_shows_in_categories_and_products(
    client: ApiClient, ctx: AppContext
) -> None:
    lighting = await create_category(ctx, "Lighting")
    await create_product(ctx, "Brass Desk Lamp", category=lighting)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    await served_from_cache(ctx, lambda: client.get("catalog:categories"))
    await served_from_cache(ctx, lambda: client.get("catalog:product", "brass-desk-lamp"))
    renamed = await client.patch(
        "catalog:category", "lighting", json={"name": "Lamps", "slug": "lamps"}, token=staff.token
    )
    assert renamed.status == 200
    categories = (await client.get("catalog:categories")).json()["results"]
    assert [(c["slug"], c["name"]) for c in categories] == [("lamps", "Lamps")]
    assert (await client.get("catalog:product", "brass-desk-lamp")).json()["category"] == "lamps"


async def test_a_staff_stock_edit_shows_at_once_and_is_announced(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Brass Desk Lamp", stock=5)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    heard = hear(ctx, INVENTORY_CHANNEL)
    await served_from_cache(ctx, lambda: client.get("catalog:product", "brass-desk-lamp"))
    response = await client.patch(
        "catalog:product", "brass-desk-lamp", json={"stock": 0}, token=staff.token
    )
    assert response.status == 200
    shown = (await client.get("catalog:product", "brass-desk-lamp")).json()
    assert (shown["stock"], shown["in_stock"]) == (0, False)
    assert [(m["type"], m["product"], m["stock"], m["in_stock"]) for m in heard] == [
        ("inventory.changed", "brass-desk-lamp", 0, False)
    ]


async def test_a_stock_change_elsewhere_shows_at_once(client: ApiClient, ctx: AppContext) -> None:
    product = await create_product(ctx, "Brass Desk Lamp", stock=5)
    await served_from_cache(ctx, lambda: client.get("catalog:products"))
    # What checkout does: a guarded decrement, then the announcement after commit.
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Product).where(Product.id == product.id, Product.stock >= 2).values(stock=3)
        )
    await ctx.after_commit.publish(stock_events([StockLevel(slug=product.slug, stock=3)], utcnow()))
    assert (await client.get("catalog:products")).json()["results"][0]["stock"] == 3


async def test_what_staff_see_never_reaches_shoppers_through_the_cache(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Old Lamp", is_active=False)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    assert (await client.get("catalog:products", token=staff.token)).json()["count"] == 1
    assert (await client.get("catalog:product", "old-lamp", token=staff.token)).status == 200
    assert (await client.get("catalog:products")).json()["count"] == 0
    assert (await client.get("catalog:product", "old-lamp")).status == 404


async def test_a_cached_answer_is_byte_for_byte_the_first_with_the_same_etag(
    client: ApiClient, ctx: AppContext
) -> None:
    lighting = await create_category(ctx, "Lighting")
    await create_product(ctx, "Brass Desk Lamp", category=lighting, description="Laiton – 40 cm")
    await create_product(ctx, "Copper Lamp")
    for fetch in (
        lambda: client.get("catalog:products", query="page_size=1"),
        lambda: client.get("catalog:product", "brass-desk-lamp"),
        lambda: client.get("catalog:categories"),
    ):
        first = await fetch()
        cached = await served_from_cache(ctx, fetch)
        assert cached.body == first.body
        assert cached.headers["ETag"] == first.headers["ETag"]
        assert cached.headers["Content-Type"] == "application/json; charset=UTF-8"


async def test_a_catalog_read_answers_its_etag_with_304_until_the_catalog_changes(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Brass Desk Lamp", price="10.00")
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    for route, args in (("catalog:products", ()), ("catalog:product", ("brass-desk-lamp",))):
        tag = (await client.get(route, *args)).headers["ETag"]
        revalidated = await client.get(route, *args, headers={"If-None-Match": tag})
        assert (revalidated.status, revalidated.body) == (304, b"")
    tag = (await client.get("catalog:product", "brass-desk-lamp")).headers["ETag"]
    await client.patch(
        "catalog:product", "brass-desk-lamp", json={"price": "12.00"}, token=staff.token
    )
    changed = await client.get("catalog:product", "brass-desk-lamp", headers={"If-None-Match": tag})
    assert changed.status == 200
    assert changed.json()["price"] == "12.00"


async def test_a_cached_read_opens_no_database_session(
    client: ApiClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    reads = [
        lambda: client.get("catalog:products", query="page_size=5"),
        lambda: client.get("catalog:product", "brass-desk-lamp"),
        lambda: client.get("catalog:categories"),
    ]
    for read in reads:
        assert (await read()).status == 200  # cached from now on
    opened = []
    sessionmaker = ctx.sessionmaker

    def counting_sessionmaker() -> AsyncSession:
        opened.append(1)
        return sessionmaker()

    monkeypatch.setattr(ctx, "sessionmaker", counting_sessionmaker)
    for read in reads:
        assert (await read()).status == 200
    assert opened == []


@pytest.mark.parametrize(
    "invalid", ["min_price=10.001", "page=0", "page_size=0", "ordering=price,name", "q=%00"]
)
async def test_an_invalid_query_is_refused_even_when_a_close_valid_one_is_cached(
    client: ApiClient, ctx: AppContext, invalid: str
) -> None:
    await create_product(ctx, "Brass Desk Lamp", price="10.00")
    valid = "min_price=10.00&page=1&page_size=5&ordering=price&q=lamp"
    assert (await client.get("catalog:products", query=valid)).status == 200
    name = invalid.partition("=")[0]
    query = "&".join(p for p in valid.split("&") if not p.startswith(f"{name}=")) + "&" + invalid
    refused = await client.get("catalog:products", query=query)
    assert refused.status == 400
    assert refused.json()["error"]["code"] == "validation_error"
    assert name in refused.json()["error"]["fields"]
