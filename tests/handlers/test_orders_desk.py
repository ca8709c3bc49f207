"""GET /api/v1/orders for staff: every order, with filters; shoppers keep their own."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest

from core.context import AppContext
from models.base import utcnow
from tests.client import ApiClient
from tests.factories import log_in
from tests.order_factories import add_product, ordered, shoppers


async def listed(client: ApiClient, token: str, **filters: str | int) -> list[int]:
    response = await client.get("orders:list", token=token, query=urlencode(filters))
    assert response.status == 200, response.body
    return [order["id"] for order in response.json()["results"]]


async def test_staff_see_every_order_and_filter_by_status_user_and_time(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=20)
    alice, bob = await shoppers(ctx, 2)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    first = await ordered(client, alice.token, {"brass-lamp": 1})
    second = await ordered(client, bob.token, {"brass-lamp": 1})
    third = await ordered(client, alice.token, {"brass-lamp": 1})
    await client.post("orders:cancel", second["id"], token=bob.token)

    assert await listed(client, staff.token) == [third["id"], second["id"], first["id"]]
    assert await listed(client, staff.token, status="cancelled") == [second["id"]]
    assert await listed(client, staff.token, status="pending_payment,cancelled") == [
        third["id"],
        second["id"],
        first["id"],
    ]
    assert await listed(client, staff.token, user=alice.user.id) == [third["id"], first["id"]]
    an_hour_ago = (utcnow() - timedelta(hours=1)).isoformat()
    in_an_hour = (utcnow() + timedelta(hours=1)).isoformat()
    assert len(await listed(client, staff.token, placed_after=an_hour_ago)) == 3
    assert await listed(client, staff.token, placed_before=an_hour_ago) == []
    assert await listed(client, staff.token, placed_after=in_an_hour) == []
    counted = await client.get("orders:list", token=staff.token, query="status=pending_payment")
    assert counted.json()["count"] == 2


async def test_shoppers_still_see_only_their_own_and_cannot_filter_by_user(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=20)
    alice, bob = await shoppers(ctx, 2)
    mine = await ordered(client, alice.token, {"brass-lamp": 1})
    await ordered(client, bob.token, {"brass-lamp": 1})
    assert await listed(client, alice.token) == [mine["id"]]
    assert await listed(client, alice.token, status="pending_payment") == [mine["id"]]
    refused = await client.get("orders:list", token=alice.token, query=f"user={bob.user.id}")
    assert (refused.status, refused.error_code) == (403, "permission_denied")


@pytest.mark.parametrize(
    "query",
    [
        "status=lost",
        "status=paid,lost",
        "user=abc",
        "user=0",
        "placed_after=yesterday",
        "placed_before=2026-01-01T00:00:00",
    ],
    ids=[
        "unknown-status",
        "one-unknown",
        "user-not-a-number",
        "user-zero",
        "not-a-time",
        "no-time-zone",
    ],
)
async def test_bad_filters_are_field_errors(client: ApiClient, ctx: AppContext, query: str) -> None:
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    response = await client.get("orders:list", token=staff.token, query=query)
    assert (response.status, response.error_code) == (400, "validation_error")
    name = query.split("=")[0]
    assert any(field.split(".")[0] == name for field in response.json()["error"]["fields"])
