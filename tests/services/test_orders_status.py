"""The order status machine: which moves exist, and which of them put stock back."""

from __future__ import annotations

import itertools
from typing import get_args

import pytest

from core import errors
from core.context import AppContext
from models.base import utcnow
from schemas.events import INVENTORY_CHANNEL, ORDERS_CHANNEL
from schemas.orders import OrderStatus
from services import order_status
from tests.client import ApiClient
from tests.events import hear
from tests.order_factories import (
    placed_order,
    set_order_status,
    stock_of,
)

STATUSES = get_args(OrderStatus)
# docs/api.md, Orders.
LEGAL = {
    ("pending_payment", "paid"),
    ("pending_payment", "payment_failed"),
    ("pending_payment", "cancelled"),
    ("pending_payment", "expired"),
    ("paid", "processing"),
    ("paid", "cancelled"),
    ("paid", "refunded"),
    ("processing", "shipped"),
    ("shipped", "delivered"),
    ("payment_failed", "pending_payment"),
    ("payment_failed", "paid"),
    ("payment_failed", "cancelled"),
}
# Moves that take the items of an order whose payment failed once more (here from stock
# that was never put back, as the order was put in its status directly).
RETAKING = {("payment_failed", "pending_payment"), ("payment_failed", "paid")}
# Moves that end an order whose items are still set aside.
RESTOCKING = {
    ("pending_payment", "payment_failed"),
    ("pending_payment", "cancelled"),
    ("pending_payment", "expired"),
    ("paid", "cancelled"),
    ("paid", "refunded"),
}
MOVES = [(a, b) for a, b in itertools.product(STATUSES, STATUSES) if a != b]


async def move(ctx: AppContext, order_id: int, target: str) -> order_status.StatusChange | None:
    async with ctx.transactions() as db:
        return await order_status.apply_transition(
            db, order_id=order_id, target=target, now=utcnow()
        )


@pytest.mark.parametrize(("current", "target"), MOVES, ids=[f"{a}->{b}" for a, b in MOVES])
async def test_each_move_is_allowed_only_if_the_machine_has_it(
    client: ApiClient, ctx: AppContext, current: str, target: str
) -> None:
    buyer, order = await placed_order(client, ctx, 4, stock=10)
    await set_order_status(ctx, order["id"], current)

    if (current, target) not in LEGAL:
        with pytest.raises(errors.Conflict):
            await move(ctx, order["id"], target)
        assert await stock_of(ctx, "brass-lamp") == 6
        return
    change = await move(ctx, order["id"], target)
    assert change is not None
    assert (change.previous, change.status, change.user_id) == (current, target, buyer.user.id)
    expected = 6  # the order's 4 of 10 still taken
    if (current, target) in RESTOCKING:
        expected = 10
    elif (current, target) in RETAKING:
        expected = 2
    assert await stock_of(ctx, "brass-lamp") == expected
    changed = (current, target) in RESTOCKING | RETAKING
    assert [(level.slug, level.stock) for level in change.levels] == (
        [("brass-lamp", expected)] if changed else []
    )


async def test_moving_to_the_current_status_changes_nothing(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx)
    assert await move(ctx, order["id"], "pending_payment") is None


async def test_an_unknown_order_cannot_move(ctx: AppContext) -> None:
    with pytest.raises(errors.NotFound):
        await move(ctx, 31337, "paid")


async def test_a_cancellation_publishes_the_status_then_the_restored_stock(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 2, stock=5)
    heard = hear(ctx, ORDERS_CHANNEL, INVENTORY_CHANNEL)
    await client.post("orders:cancel", order["id"], token=buyer.token)
    await client.post("orders:cancel", order["id"], token=buyer.token)  # nothing more to tell

    [status, stock] = heard
    assert (status["type"], status["order_id"], status["status"]) == (
        "order.status",
        order["id"],
        "cancelled",
    )
    assert isinstance(status["event_id"], int) and status["at"].endswith("Z")
    assert (stock["type"], stock["product"], stock["stock"], stock["in_stock"]) == (
        "inventory.changed",
        "brass-lamp",
        5,
        True,
    )
