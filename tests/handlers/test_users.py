"""/api/v1/users: staff list accounts and deactivate shoppers; open sockets follow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from core.context import AppContext
from models.accounts import User
from schemas.events import ACCOUNTS_CHANNEL, Event
from services import accounts
from tests.client import ApiClient
from tests.factories import LoggedIn, create_user, log_in
from tests.order_factories import add_product, ordered, shopper
from tests.ws import WAIT, close_code, open_socket, receive

ORDERS = "/ws/orders"


async def staff(client: ApiClient, ctx: AppContext) -> LoggedIn:
    return await log_in(client, ctx, "staff@example.com", staff=True)


async def is_active(ctx: AppContext, user_id: int) -> bool:
    async with ctx.sessionmaker() as session:
        user = await session.get_one(User, user_id)
        return user.is_active


async def deactivate(client: ApiClient, token: str, user_id: int) -> None:
    response = await client.patch("users:detail", user_id, json={"is_active": False}, token=token)
    assert response.status == 200, response.body
    assert response.json()["is_active"] is False


async def test_staff_list_users_with_search_and_filters(client: ApiClient, ctx: AppContext) -> None:
    admin = await staff(client, ctx)
    await create_user(ctx, "ada@example.com", full_name="Ada Lovelace")
    await create_user(ctx, "grace@example.com", full_name="Grace Hopper", verified=False)

    everyone = await client.get("users:list", token=admin.token)
    assert everyone.status == 200, everyone.body
    page = everyone.json()
    assert (page["count"], page["page"], page["next"], page["previous"]) == (3, 1, None, None)
    first = page["results"][0]
    assert set(first) == {
        "id",
        "email",
        "full_name",
        "is_staff",
        "is_active",
        "email_verified",
        "created_at",
    }
    assert first["email"] == "staff@example.com" and first["is_staff"] is True
    assert first["created_at"].endswith("Z")

    async def emails(query: str) -> list[str]:
        response = await client.get("users:list", token=admin.token, query=query)
        assert response.status == 200, response.body
        return [user["email"] for user in response.json()["results"]]

    assert await emails("search=LOVE") == ["ada@example.com"]  # part of the full name
    assert await emails("search=GRACE%40") == ["grace@example.com"]  # part of the email
    assert await emails("search=%25") == []  # a wildcard is a plain character
    assert await emails("search=example&is_staff=false") == [
        "ada@example.com",
        "grace@example.com",
    ]
    assert await emails("is_staff=true") == ["staff@example.com"]
    assert await emails("page_size=1&page=2") == ["ada@example.com"]

    bad = await client.get("users:list", token=admin.token, query="is_active=maybe")
    assert bad.status == 400 and bad.error_code == "validation_error"


async def test_anonymous_is_401_and_a_shopper_403(client: ApiClient, ctx: AppContext) -> None:
    buyer = await log_in(client, ctx)
    for token, status, code in [
        (None, 401, "not_authenticated"),
        (buyer.token, 403, "permission_denied"),
    ]:
        listed = await client.get("users:list", token=token)
        assert (listed.status, listed.error_code) == (status, code)
        changed = await client.patch(
            "users:detail", buyer.user.id, json={"is_active": False}, token=token
        )
        assert (changed.status, changed.error_code) == (status, code)
    assert await is_active(ctx, buyer.user.id)


async def test_staff_may_not_change_themselves_or_other_staff(
    client: ApiClient, ctx: AppContext
) -> None:
    admin = await staff(client, ctx)
    other = await create_user(ctx, "other-staff@example.com", staff=True)
    for user_id in (admin.user.id, other.id):
        response = await client.patch(
            "users:detail", user_id, json={"is_active": False}, token=admin.token
        )
        assert (response.status, response.error_code) == (403, "permission_denied")
        assert await is_active(ctx, user_id)
    assert (await client.get("auth:me", token=admin.token)).status == 200


async def test_an_unknown_user_is_404(client: ApiClient, ctx: AppContext) -> None:
    admin = await staff(client, ctx)
    response = await client.patch(
        "users:detail", 999_999, json={"is_active": False}, token=admin.token
    )
    assert (response.status, response.error_code) == (404, "not_found")


async def test_a_bad_body_is_400_and_changes_nothing(client: ApiClient, ctx: AppContext) -> None:
    admin = await staff(client, ctx)
    buyer = await create_user(ctx)
    response = await client.patch(
        "users:detail", buyer.id, json={"is_active": "maybe"}, token=admin.token
    )
    assert (response.status, response.error_code) == (400, "validation_error")
    assert await is_active(ctx, buyer.id)


async def test_a_deactivated_user_is_refused_and_their_refresh_tokens_stay_revoked(
    client: ApiClient, ctx: AppContext
) -> None:
    admin = await staff(client, ctx)
    buyer = await log_in(client, ctx)
    await deactivate(client, admin.token, buyer.user.id)

    me = await client.get("auth:me", token=buyer.token)
    assert (me.status, me.error_code) == (401, "not_authenticated")
    refreshed = await client.post("auth:refresh", json={"refresh_token": buyer.refresh_token})
    assert refreshed.status == 401

    # Revoked, not only refused while inactive: reactivation does not bring them back.
    reactivated = await client.patch(
        "users:detail", buyer.user.id, json={"is_active": True}, token=admin.token
    )
    assert reactivated.status == 200 and reactivated.json()["is_active"] is True
    refreshed = await client.post("auth:refresh", json={"refresh_token": buyer.refresh_token})
    assert refreshed.status == 401, refreshed.body
    assert refreshed.error_code == "not_authenticated"
    assert (await client.get("auth:me", token=buyer.token)).status == 200


async def test_deactivation_closes_the_users_open_socket_and_no_one_elses(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    admin = await staff(client, ctx)
    buyer, other = await shopper(ctx, "closed"), await shopper(ctx, "open")
    async with (
        open_socket(client, ORDERS, token=buyer.token, since=0) as buyer_socket,
        open_socket(client, ORDERS, token=admin.token, since=0) as staff_socket,
        open_socket(client, ORDERS, token=other.token, since=0) as other_socket,
    ):
        first = await ordered(client, buyer.token, {"brass-lamp": 1})
        assert (await receive(buyer_socket))["order_id"] == first["id"]  # listening
        assert (await receive(staff_socket))["order_id"] == first["id"]

        await deactivate(client, admin.token, buyer.user.id)
        assert await close_code(buyer_socket, timeout=WAIT) == 4401
        with pytest.raises(ConnectionClosed) as closed:
            await buyer_socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.reason == "account closed"

        # Everyone else's sockets stay open and keep hearing their events.
        second = await ordered(client, other.token, {"brass-lamp": 1})
        assert (await receive(staff_socket))["order_id"] == second["id"]
        assert (await receive(other_socket))["order_id"] == second["id"]


async def test_a_deactivation_committed_while_the_socket_reads_its_user_closes_it(
    client: ApiClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket read the user as active, and the account closed before it listened."""
    admin = await staff(client, ctx)
    buyer = await shopper(ctx)
    read_user = accounts.authenticate

    async def deactivated_after_the_read(*args: Any, **kwargs: Any) -> accounts.Authenticated:
        authenticated = await read_user(*args, **kwargs)
        heard: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        stop = ctx.hub.subscribe(ACCOUNTS_CHANNEL, heard.set_result)
        try:
            await deactivate(client, admin.token, buyer.user.id)
            await asyncio.wait_for(heard, WAIT)  # delivered to every listener by now
        finally:
            stop()
        return authenticated

    monkeypatch.setattr(accounts, "authenticate", deactivated_after_the_read)
    async with open_socket(client, ORDERS, token=buyer.token, since=0) as socket:
        assert await close_code(socket) == 4401
