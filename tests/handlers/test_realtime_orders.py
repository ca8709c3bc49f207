"""/ws/orders with real websocket clients: who hears what, replay, resync, expiry."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from core.context import AppContext
from core.security import create_access_token
from core.sockets import STARTS_AT_ONCE
from core.websocket import TRY_AGAIN_LATER
from handlers.realtime import EventSocketHandler
from models.base import utcnow
from services import orders
from tests.client import ApiClient
from tests.factories import log_in
from tests.order_factories import add_product, ordered, shopper, shoppers
from tests.processes import poll
from tests.ws import WAIT, close_code, open_socket, receive, receive_many, rest_before_close

ORDERS = "/ws/orders"


async def cancel(client: ApiClient, token: str, order_id: int) -> None:
    response = await client.post("orders:cancel", order_id, token=token)
    assert response.status == 200, response.body


async def stored_event_ids(client: ApiClient, token: str, order_id: int) -> list[int]:
    timeline = (await client.get("orders:events", order_id, token=token)).json()
    return [event["id"] for event in timeline["results"]]


@pytest.mark.parametrize(
    "token", [None, "", "not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"], ids=repr
)
async def test_a_missing_or_bad_token_closes_with_4401(
    client: ApiClient, token: str | None
) -> None:
    async with open_socket(client, ORDERS, token=token) as socket:
        assert await close_code(socket) == 4401


async def test_an_expired_token_closes_with_4401(client: ApiClient, ctx: AppContext) -> None:
    buyer = await shopper(ctx)
    expired = create_access_token(
        user_id=buyer.user.id,
        key=ctx.settings.signing_key,
        ttl=60,
        now=utcnow() - timedelta(hours=1),
    )
    async with open_socket(client, ORDERS, token=expired) as socket:
        assert await close_code(socket) == 4401


async def test_a_token_signed_with_another_key_closes_with_4401(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer = await shopper(ctx)
    forged = create_access_token(user_id=buyer.user.id, key="another-key-" * 4, ttl=60)
    async with open_socket(client, ORDERS, token=forged) as socket:
        assert await close_code(socket) == 4401


@pytest.mark.parametrize(
    "params",
    [{"order": "abc"}, {"order": "0"}, {"since": "-1"}, {"since": "1" * 40}, {"since": "1.5"}],
    ids=repr,
)
async def test_bad_parameters_close_with_4400(
    client: ApiClient, ctx: AppContext, params: dict[str, str]
) -> None:
    buyer = await shopper(ctx)
    async with open_socket(client, ORDERS, token=buyer.token, **params) as socket:
        assert await close_code(socket) == 4400


async def test_watching_someone_elses_order_or_an_unknown_one_closes_with_4403(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    owner, stranger = await shoppers(ctx, 2)
    order = await ordered(client, owner.token, {"brass-lamp": 1})
    for order_id in (order["id"], order["id"] + 1000):
        async with open_socket(client, ORDERS, token=stranger.token, order=order_id) as socket:
            assert await close_code(socket) == 4403


async def test_a_token_that_expires_while_connected_closes_with_4401(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    # JWT times are whole seconds: a 2 s token has at least 1 s left.
    short_lived = create_access_token(user_id=buyer.user.id, key=ctx.settings.signing_key, ttl=2)
    async with open_socket(client, ORDERS, token=short_lived, since=0) as socket:
        order = await ordered(client, buyer.token, {"brass-lamp": 1})
        assert (await receive(socket))["order_id"] == order["id"]  # open, then closed at expiry
        assert await close_code(socket, timeout=3) == 4401


async def test_shoppers_hear_their_own_orders_and_staff_hear_every_order(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    alice, bob = await shoppers(ctx, 2)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    # since=0: a socket hears what is committed after it connects even before the
    # server has finished opening it (clients resume from what they read, docs/websockets.md).
    async with (
        open_socket(client, ORDERS, token=alice.token, since=0) as alice_socket,
        open_socket(client, ORDERS, token=bob.token, since=0) as bob_socket,
        open_socket(client, ORDERS, token=staff.token, since=0) as staff_socket,
    ):
        alices = await ordered(client, alice.token, {"brass-lamp": 1})
        bobs = await ordered(client, bob.token, {"brass-lamp": 1})
        await cancel(client, alice.token, alices["id"])

        heard_by_alice = await receive_many(alice_socket, 2)
        assert [(m["order_id"], m["status"]) for m in heard_by_alice] == [
            (alices["id"], "pending_payment"),
            (alices["id"], "cancelled"),
        ]
        assert [(m["order_id"], m["status"]) for m in await receive_many(bob_socket, 1)] == [
            (bobs["id"], "pending_payment")
        ]
        heard_by_staff = await receive_many(staff_socket, 3)
        assert [m["order_id"] for m in heard_by_staff] == [alices["id"], bobs["id"], alices["id"]]
        assert await rest_before_close(ctx.sockets, alice_socket) == []
        assert await rest_before_close(ctx.sockets, bob_socket) == []

    first = heard_by_alice[0]
    assert set(first) == {"type", "event_id", "order_id", "status", "at"}  # no user_id
    assert first["type"] == "order.status" and first["at"].endswith("Z")
    assert first["event_id"] == alices["last_event_id"]


async def test_the_order_filter_hears_one_order_only(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    watched = await ordered(client, buyer.token, {"brass-lamp": 1})
    since = watched["last_event_id"]
    async with open_socket(
        client, ORDERS, token=buyer.token, order=watched["id"], since=since
    ) as socket:
        other = await ordered(client, buyer.token, {"brass-lamp": 1})
        await cancel(client, buyer.token, other["id"])
        await cancel(client, buyer.token, watched["id"])
        [message] = await receive_many(socket, 1)
        assert (message["order_id"], message["status"]) == (watched["id"], "cancelled")
        assert await rest_before_close(ctx.sockets, socket) == []


async def test_staff_may_watch_any_single_order(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    order = await ordered(client, buyer.token, {"brass-lamp": 1})
    since = order["last_event_id"]
    async with open_socket(
        client, ORDERS, token=staff.token, order=order["id"], since=since
    ) as socket:
        await cancel(client, buyer.token, order["id"])
        assert (await receive(socket))["status"] == "cancelled"


async def test_since_replays_what_was_missed_in_order_then_goes_live(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    buyer, other = await shoppers(ctx, 2)
    first = await ordered(client, buyer.token, {"brass-lamp": 1})
    # Missed while away: a new order, a cancellation, and someone else's order.
    second = await ordered(client, buyer.token, {"brass-lamp": 1})
    await cancel(client, buyer.token, first["id"])
    await ordered(client, other.token, {"brass-lamp": 1})

    since = first["last_event_id"]
    async with open_socket(client, ORDERS, token=buyer.token, since=since) as socket:
        replayed = await receive_many(socket, 2)
        await cancel(client, buyer.token, second["id"])
        live = await receive(socket)
        assert await rest_before_close(ctx.sockets, socket) == []

    assert [(m["order_id"], m["status"]) for m in replayed] == [
        (second["id"], "pending_payment"),
        (first["id"], "cancelled"),
    ]
    assert [m["event_id"] for m in replayed] == sorted(m["event_id"] for m in replayed)
    assert (live["order_id"], live["status"]) == (second["id"], "cancelled")


async def test_events_committed_while_the_replay_runs_arrive_once(
    client: ApiClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One commit lands just before the replay reads the database (so it is both stored
    and heard live), another just after (heard live only): each arrives exactly once."""
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    placed = [await ordered(client, buyer.token, {"brass-lamp": 1}) for _ in range(3)]
    read_events = orders.events_since

    async def replay_racing_commits(*args: Any, **kwargs: Any) -> orders.Missed:
        await cancel(client, buyer.token, placed[1]["id"])
        missed = await read_events(*args, **kwargs)
        await cancel(client, buyer.token, placed[2]["id"])
        return missed

    monkeypatch.setattr(orders, "events_since", replay_racing_commits)
    since = placed[0]["last_event_id"]
    async with open_socket(client, ORDERS, token=buyer.token, since=since) as socket:
        heard = await receive_many(socket, 4)
        assert await rest_before_close(ctx.sockets, socket) == []

    stored = []
    for order in placed:
        stored += await stored_event_ids(client, buyer.token, order["id"])
    expected = sorted(event_id for event_id in stored if event_id > since)
    assert sorted(m["event_id"] for m in heard) == expected  # no gap
    assert len({m["event_id"] for m in heard}) == len(heard)  # no duplicate


async def test_replay_under_concurrent_checkouts_misses_nothing_and_repeats_nothing(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=100)
    buyer = await shopper(ctx)
    first = await ordered(client, buyer.token, {"brass-lamp": 1})
    since = first["last_event_id"]

    async def place_several() -> list[dict[str, Any]]:
        placed = []
        for _ in range(8):
            placed.append(await ordered(client, buyer.token, {"brass-lamp": 1}))
            await asyncio.sleep(0.01)
        return placed

    async def connect_and_listen(delay: float) -> list[int]:
        await asyncio.sleep(delay)
        async with open_socket(client, ORDERS, token=buyer.token, since=since) as socket:
            return [m["event_id"] for m in await receive_many(socket, 8)]

    placed, *listeners = await asyncio.gather(
        place_several(), *(connect_and_listen(delay) for delay in (0, 0.02, 0.05, 0.08, 0.12))
    )
    expected = sorted(order["last_event_id"] for order in placed)
    for heard in listeners:
        assert sorted(heard) == expected and len(set(heard)) == len(heard)


@pytest.mark.settings(ws_replay_limit=2)
async def test_more_missed_events_than_the_replay_limit_send_resync_then_live_events(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    first = await ordered(client, buyer.token, {"brass-lamp": 1})
    missed = [await ordered(client, buyer.token, {"brass-lamp": 1}) for _ in range(3)]
    since = first["last_event_id"]
    async with open_socket(client, ORDERS, token=buyer.token, since=since) as socket:
        assert await receive(socket) == {"type": "resync"}
        await cancel(client, buyer.token, missed[0]["id"])
        live = await receive(socket)
    assert (live["order_id"], live["status"]) == (missed[0]["id"], "cancelled")


@pytest.mark.settings(ws_replay_limit=3)
async def test_exactly_the_replay_limit_is_replayed(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    first = await ordered(client, buyer.token, {"brass-lamp": 1})
    missed = [await ordered(client, buyer.token, {"brass-lamp": 1}) for _ in range(3)]
    async with open_socket(client, ORDERS, token=buyer.token, since=first["last_event_id"]) as s:
        heard = await receive_many(s, 3)
    assert [m["order_id"] for m in heard] == [order["id"] for order in missed]


async def test_a_foreign_origin_is_refused_at_the_handshake(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer = await shopper(ctx)
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(client, ORDERS, token=buyer.token, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.settings(allowed_origins="https://shop.example, https://admin.shop.example")
async def test_an_allowed_origin_is_accepted(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    async with open_socket(
        client, ORDERS, token=buyer.token, since=0, origin="https://admin.shop.example"
    ) as socket:
        order = await ordered(client, buyer.token, {"brass-lamp": 1})
        assert (await receive(socket))["order_id"] == order["id"]


async def test_a_reconnect_storm_waits_for_turns_and_misses_nothing(
    client: ApiClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While every turn to read the database is taken, reconnecting sockets wait (they
    do not fail on the pool's timeout); once turns free up, each gets its replay."""
    await add_product(ctx, stock=10)
    buyers = await shoppers(ctx, 3)
    placed = [await ordered(client, buyer.token, {"brass-lamp": 1}) for buyer in buyers]
    for buyer, order in zip(buyers, placed, strict=True):
        await cancel(client, buyer.token, order["id"])
    turns = ctx.sockets.start_turns
    for _ in range(STARTS_AT_ONCE):
        await turns.acquire()  # a storm already under way
    waiting = 0
    acquire = turns.acquire

    async def counted_acquire() -> bool:
        nonlocal waiting
        waiting += 1
        try:
            return await acquire()
        finally:
            waiting -= 1

    monkeypatch.setattr(turns, "acquire", counted_acquire)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(
                open_socket(client, ORDERS, token=buyer.token, since=order["last_event_id"])
            )
            for buyer, order in zip(buyers, placed, strict=True)
        ]
        await poll(lambda: waiting == 3, timeout=WAIT, failure="the sockets are not waiting")
        assert [socket.close_code for socket in sockets] == [None] * 3  # waiting, not failed
        for _ in range(STARTS_AT_ONCE):
            turns.release()
        replays = [await receive(socket) for socket in sockets]
    assert [(m["order_id"], m["status"]) for m in replays] == [
        (order["id"], "cancelled") for order in placed
    ]


async def test_a_socket_that_waits_too_long_for_a_turn_is_told_to_try_again_later(
    client: ApiClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(EventSocketHandler, "START_WAIT_SECONDS", 0.2)
    buyer = await shopper(ctx)
    for _ in range(STARTS_AT_ONCE):
        await ctx.sockets.start_turns.acquire()
    async with open_socket(client, ORDERS, token=buyer.token, since=0) as socket:
        assert await close_code(socket) == TRY_AGAIN_LATER
