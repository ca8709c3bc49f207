"""The in-process hub's dispatcher: every event reaches every listener, in order, after
the publisher has moved on, a slice of listeners per turn of the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from core.hub import DISPATCH_SLICE, Hub
from models.base import utcnow
from schemas.events import Event, StockChanged

LISTENERS = DISPATCH_SLICE * 3 + 7
EVENTS = 5


def stock_of(event: Event) -> int:
    return cast(StockChanged, event).stock


def recorder(log: list[int]) -> Callable[[Event], None]:
    return lambda event: log.append(stock_of(event))


def change(stock: int) -> StockChanged:
    return StockChanged(product="brass-lamp", stock=stock, in_stock=stock > 0, at=utcnow())


async def settle(hub: Hub[StockChanged]) -> None:
    """Turns of the loop until the dispatcher has nothing left."""
    for _ in range(LISTENERS):
        await asyncio.sleep(0)


async def test_every_listener_gets_every_event_in_order_after_publish_returns() -> None:
    hub: Hub[StockChanged] = Hub()
    received: list[list[int]] = [[] for _ in range(LISTENERS)]
    for log in received:
        hub.subscribe("inventory", recorder(log))
    for stock in range(EVENTS):
        await hub.publish(change(stock))
    assert all(log == [] for log in received)  # the publisher went on first
    await settle(hub)
    assert all(log == list(range(EVENTS)) for log in received)
    await hub.close()


async def test_other_work_runs_between_slices_of_one_fan_out() -> None:
    hub: Hub[StockChanged] = Hub()
    order: list[str] = []
    for _ in range(LISTENERS):
        hub.subscribe("inventory", lambda event: order.append("listener"))
    await hub.publish(change(1))

    async def other_work() -> None:
        await asyncio.sleep(0)
        order.append("other")

    await asyncio.gather(other_work(), settle(hub))
    assert order.count("listener") == LISTENERS
    assert 0 < order.index("other") < LISTENERS  # not after the whole fan-out


async def test_a_listener_that_unsubscribed_before_its_turn_is_not_called() -> None:
    hub: Hub[StockChanged] = Hub()
    called: list[str] = []
    hub.subscribe("inventory", lambda event: called.append("stays"))
    unsubscribe = hub.subscribe("inventory", lambda event: called.append("left"))
    await hub.publish(change(1))
    unsubscribe()
    await settle(hub)
    assert called == ["stays"]


async def test_a_listener_subscribed_after_publish_gets_only_later_events() -> None:
    hub: Hub[StockChanged] = Hub()
    received: list[int] = []
    await hub.publish(change(1))
    hub.subscribe("inventory", lambda event: received.append(stock_of(event)))
    await hub.publish(change(2))
    await settle(hub)
    assert received == [2]


async def test_a_failing_listener_does_not_stop_the_others() -> None:
    hub: Hub[StockChanged] = Hub()
    received: list[int] = []

    def broken(event: object) -> None:
        raise RuntimeError("broken listener")

    hub.subscribe("inventory", broken)
    hub.subscribe("inventory", lambda event: received.append(1))
    await hub.publish(change(1))
    await settle(hub)
    assert received == [1]
