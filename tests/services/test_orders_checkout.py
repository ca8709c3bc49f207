"""create_order_from_cart: one transaction from cart to order, stock, discount and mail."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from core import errors
from core.context import AppContext
from models.accounts import User
from models.catalog import Discount
from models.mail import OutboxMessage
from models.orders import CartItem, Order
from schemas.events import INVENTORY_CHANNEL, ORDERS_CHANNEL, Event
from services import cart
from services.checkout import PlacedOrder, create_order_from_cart
from tests.factories import count_rows
from tests.order_factories import (
    ADDRESS,
    add_category,
    add_discount,
    add_product,
    ago,
    shopper,
    stock_of,
    timeline,
)


async def fill(ctx: AppContext, user: User, lines: dict[str, int]) -> None:
    for slug, quantity in lines.items():
        async with ctx.sessionmaker() as session:
            await cart.add_item(session, user_id=user.id, slug=slug, quantity=quantity)


async def checkout(
    ctx: AppContext, user: User, *, code: str | None = None, key: str | None = None
) -> PlacedOrder:
    return await create_order_from_cart(
        ctx.transactions,
        publisher=ctx.after_commit,
        user_id=user.id,
        shipping_address=ADDRESS,
        discount_code=code,
        idempotency_key=key,
    )


async def used_count(ctx: AppContext, code: str) -> int:
    async with ctx.sessionmaker() as session:
        used = await session.scalar(select(Discount.used_count).where(Discount.code == code))
    assert used is not None
    return used


async def test_an_order_without_discount_snapshots_the_cart_and_takes_the_stock(
    ctx: AppContext,
) -> None:
    await add_product(ctx, "brass-lamp", price_cents=1999, stock=10)
    await add_product(ctx, "oak-desk", price_cents=25000, stock=3)
    await add_product(ctx, "bystander", stock=7)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 3, "oak-desk": 1})

    placed = await checkout(ctx, buyer.user)

    order = placed.order
    assert placed.created
    assert order.status == "pending_payment"
    assert (order.subtotal_cents, order.discount_total_cents, order.total_cents) == (
        30997,
        0,
        30997,
    )
    assert order.discount_code is None and order.currency == "USD"
    assert [(i.product_slug, i.unit_price_cents, i.quantity) for i in order.items] == [
        ("brass-lamp", 1999, 3),
        ("oak-desk", 25000, 1),
    ]
    assert order.shipping_address == ADDRESS
    assert [await stock_of(ctx, slug) for slug in ("brass-lamp", "oak-desk", "bystander")] == [
        7,
        2,
        7,
    ]
    assert await count_rows(ctx, CartItem) == 0
    assert await timeline(ctx, order.id) == ["pending_payment"]


async def test_the_confirmation_mail_is_queued_with_the_order(ctx: AppContext) -> None:
    await add_product(ctx, "brass-lamp", price_cents=1999)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 2})
    order = (await checkout(ctx, buyer.user)).order
    async with ctx.sessionmaker() as session:
        [mail] = (await session.scalars(select(OutboxMessage))).all()
    assert mail.recipient == buyer.user.email
    assert f"#{order.id}" in mail.subject
    assert "2 x Brass Lamp: 39.98 USD" in mail.body
    assert "Total: 39.98 USD" in mail.body
    assert "10115 Berlin" in mail.body


async def test_a_percent_discount_rounds_half_up_once_per_order(ctx: AppContext) -> None:
    # 15% of 3 x 1.50 = 0.675 -> 0.68 (per line it would be 3 x 0.225 -> 0.69 or 0.66)
    await add_product(ctx, price_cents=150)
    await add_discount(ctx, "SAVE15", kind="percent", value=15)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 3})
    order = (await checkout(ctx, buyer.user, code="save15")).order
    assert (order.subtotal_cents, order.discount_total_cents, order.total_cents) == (450, 68, 382)
    assert order.discount_code == "SAVE15"
    assert await used_count(ctx, "SAVE15") == 1


async def test_a_fixed_discount_never_takes_more_than_the_order(ctx: AppContext) -> None:
    await add_product(ctx, price_cents=1200)
    await add_discount(ctx, "TENOFF", kind="fixed", value=1000)
    await add_discount(ctx, "HUGE", kind="fixed", value=50000)
    first, second = await shopper(ctx, "first"), await shopper(ctx, "second")
    await fill(ctx, first.user, {"brass-lamp": 1})
    await fill(ctx, second.user, {"brass-lamp": 1})
    assert (await checkout(ctx, first.user, code="TENOFF")).order.total_cents == 200
    assert (await checkout(ctx, second.user, code="HUGE")).order.total_cents == 0


async def test_a_category_discount_counts_only_that_category(ctx: AppContext) -> None:
    lamps = await add_category(ctx, "lamps")
    await add_product(ctx, "brass-lamp", price_cents=2000, category=lamps)
    await add_product(ctx, "oak-desk", price_cents=10000)
    await add_discount(ctx, "LAMPS50", kind="percent", value=50, category=lamps)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 1, "oak-desk": 1})
    order = (await checkout(ctx, buyer.user, code="LAMPS50")).order
    assert (order.subtotal_cents, order.discount_total_cents, order.total_cents) == (
        12000,
        1000,
        11000,
    )


@pytest.mark.parametrize(
    "discount",
    [
        {"code": "OLD", "ends_at": ago(days=1)},
        {"code": "USEDUP", "max_uses": 5, "used_count": 5},
        {"code": "BIGSPENDER", "min_order_total_cents": 100000},
    ],
    ids=["expired", "exhausted", "below-minimum"],
)
async def test_a_discount_that_does_not_apply_refuses_the_order_and_changes_nothing(
    ctx: AppContext, discount: dict[str, Any]
) -> None:
    await add_product(ctx, price_cents=1000, stock=4)
    await add_discount(ctx, **discount)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 2})
    with pytest.raises(errors.ValidationFailed) as refused:
        await checkout(ctx, buyer.user, code=discount["code"])
    assert list(refused.value.fields) == ["discount_code"]
    assert await stock_of(ctx, "brass-lamp") == 4
    assert await count_rows(ctx, Order) == 0
    assert await count_rows(ctx, CartItem) == 1
    assert await count_rows(ctx, OutboxMessage) == 0
    assert await used_count(ctx, discount["code"].upper()) == discount.get("used_count", 0)


async def test_an_unknown_discount_code_refuses_the_order(ctx: AppContext) -> None:
    await add_product(ctx)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 1})
    with pytest.raises(errors.ValidationFailed) as refused:
        await checkout(ctx, buyer.user, code="NOPE")
    assert list(refused.value.fields) == ["discount_code"]


async def test_the_last_use_of_a_discount_goes_to_one_order(ctx: AppContext) -> None:
    await add_product(ctx, price_cents=1000)
    await add_discount(ctx, "ONCE", max_uses=1)
    first, second = await shopper(ctx, "first"), await shopper(ctx, "second")
    await fill(ctx, first.user, {"brass-lamp": 1})
    await fill(ctx, second.user, {"brass-lamp": 1})
    await checkout(ctx, first.user, code="ONCE")
    with pytest.raises(errors.ValidationFailed):
        await checkout(ctx, second.user, code="ONCE")
    assert await used_count(ctx, "ONCE") == 1


async def test_short_stock_leaves_every_product_unchanged_and_names_the_short_ones(
    ctx: AppContext,
) -> None:
    await add_product(ctx, "brass-lamp", stock=10)
    await add_product(ctx, "oak-desk", stock=1)
    await add_product(ctx, "wool-rug", stock=0)
    await add_discount(ctx, "SAVE10", max_uses=3)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 2, "oak-desk": 2, "wool-rug": 1})
    with pytest.raises(errors.InsufficientStock) as short:
        await checkout(ctx, buyer.user, code="SAVE10")
    assert short.value.products == ["oak-desk", "wool-rug"]
    assert [await stock_of(ctx, s) for s in ("brass-lamp", "oak-desk", "wool-rug")] == [10, 1, 0]
    assert await used_count(ctx, "SAVE10") == 0
    assert await count_rows(ctx, Order) == 0
    assert await count_rows(ctx, CartItem) == 3


async def test_a_product_withdrawn_since_it_was_added_is_short(ctx: AppContext) -> None:
    product = await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 1})
    async with ctx.sessionmaker() as session, session.begin():
        (await session.merge(product)).is_active = False
    with pytest.raises(errors.InsufficientStock) as short:
        await checkout(ctx, buyer.user)
    assert short.value.products == ["brass-lamp"]


async def test_an_empty_cart_cannot_be_ordered(ctx: AppContext) -> None:
    buyer = await shopper(ctx)
    with pytest.raises(errors.CartEmpty):
        await checkout(ctx, buyer.user)
    await add_product(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 1})
    await checkout(ctx, buyer.user)
    with pytest.raises(errors.CartEmpty):  # the cart was cleared by the first order
        await checkout(ctx, buyer.user)


async def test_a_cart_mixing_currencies_cannot_be_ordered(ctx: AppContext) -> None:
    product = await add_product(ctx, "brass-lamp", currency="USD")
    await add_product(ctx, "oak-desk", currency="USD")
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 1, "oak-desk": 1})
    async with ctx.sessionmaker() as session, session.begin():
        (await session.merge(product)).currency = "EUR"  # repriced after it was added
    with pytest.raises(errors.ValidationFailed) as refused:
        await checkout(ctx, buyer.user)
    assert refused.value.params == {"currencies": "EUR, USD"}


async def test_the_same_idempotency_key_returns_the_first_order_and_takes_stock_once(
    ctx: AppContext,
) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 2})
    first = await checkout(ctx, buyer.user, key="checkout-1")
    await fill(ctx, buyer.user, {"brass-lamp": 1})  # a retry must not order this
    again = await checkout(ctx, buyer.user, key="checkout-1")
    assert (first.created, again.created) == (True, False)
    assert again.order.id == first.order.id
    assert [item.quantity for item in again.order.items] == [2]
    assert await stock_of(ctx, "brass-lamp") == 8
    assert await count_rows(ctx, Order) == 1
    assert await count_rows(ctx, CartItem) == 1


async def test_an_idempotency_key_belongs_to_one_user(ctx: AppContext) -> None:
    await add_product(ctx, stock=10)
    first, second = await shopper(ctx, "first"), await shopper(ctx, "second")
    await fill(ctx, first.user, {"brass-lamp": 1})
    await fill(ctx, second.user, {"brass-lamp": 1})
    one = await checkout(ctx, first.user, key="same-key")
    two = await checkout(ctx, second.user, key="same-key")
    assert two.created and two.order.id != one.order.id


async def test_the_order_and_stock_events_are_published_after_commit(ctx: AppContext) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    await fill(ctx, buyer.user, {"brass-lamp": 4})
    heard: list[tuple[dict[str, Any], asyncio.Task[int]]] = []

    def listen(event: Event) -> None:
        # What another connection sees as the event arrives: committed data only.
        heard.append((event.model_dump(mode="json"), asyncio.create_task(count_rows(ctx, Order))))

    ctx.hub.subscribe(ORDERS_CHANNEL, listen)
    ctx.hub.subscribe(INVENTORY_CHANNEL, listen)
    order = (await checkout(ctx, buyer.user)).order
    async with asyncio.timeout(5):  # the hub delivers on the loop's next turns
        while len(heard) < 2:
            await asyncio.sleep(0)

    [(status, orders_seen_by_status), (stock, orders_seen_by_stock)] = heard
    orders_seen = await orders_seen_by_status
    assert await orders_seen_by_stock == 1
    assert status["type"] == "order.status"
    assert (status["order_id"], status["user_id"], status["status"]) == (
        order.id,
        buyer.user.id,
        "pending_payment",
    )
    assert orders_seen == 1
    assert (stock["type"], stock["product"], stock["stock"]) == (
        "inventory.changed",
        "brass-lamp",
        6,
    )
