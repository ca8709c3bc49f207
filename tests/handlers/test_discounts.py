"""/api/v1/discounts: staff-only CRUD of discount codes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.context import AppContext
from tests.catalog_factories import create_category, create_discount
from tests.client import ApiClient
from tests.factories import log_in

SPRING = {
    "code": "Spring10",
    "kind": "percent",
    "value": 10,
    "starts_at": "2026-03-20T00:00:00+01:00",
    "ends_at": "2026-06-21T00:00:00Z",
    "max_uses": 100,
    "min_order_total": "25.00",
}


async def staff_token(client: ApiClient, ctx: AppContext) -> str:
    return (await log_in(client, ctx, "staff@example.com", staff=True)).token


async def test_staff_create_read_change_and_delete_a_discount(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_category(ctx, "Lighting")
    token = await staff_token(client, ctx)
    created = await client.post("catalog:discounts", json=SPRING, token=token)
    assert created.status == 201, created.body
    discount = created.json()
    assert discount == {
        "id": discount["id"],
        "code": "SPRING10",
        "kind": "percent",
        "value": "10",
        "category": None,
        "starts_at": "2026-03-19T23:00:00Z",
        "ends_at": "2026-06-21T00:00:00Z",
        "max_uses": 100,
        "used_count": 0,
        "min_order_total": "25.00",
        "is_active": True,
    }
    assert (await client.get("catalog:discount", discount["id"], token=token)).json() == discount

    changed = await client.patch(
        "catalog:discount",
        discount["id"],
        json={"kind": "fixed", "value": "7.50", "category": "lighting", "max_uses": None},
        token=token,
    )
    assert changed.status == 200, changed.body
    assert changed.json() == {
        **discount,
        "kind": "fixed",
        "value": "7.50",
        "category": "lighting",
        "max_uses": None,
    }
    assert (await client.delete("catalog:discount", discount["id"], token=token)).status == 204
    assert (await client.get("catalog:discount", discount["id"], token=token)).status == 404


async def test_codes_are_unique_whatever_their_case(client: ApiClient, ctx: AppContext) -> None:
    await create_discount(ctx, "SAVE10")
    other = await create_discount(ctx, "OTHER")
    token = await staff_token(client, ctx)
    duplicate = await client.post(
        "catalog:discounts", json={"code": "save10", "kind": "percent", "value": 5}, token=token
    )
    assert (duplicate.status, duplicate.error_code) == (409, "conflict")
    assert duplicate.json()["error"]["fields"] == {
        "code": ["A discount with this code already exists."]
    }
    renamed = await client.patch("catalog:discount", other.id, json={"code": "Save10"}, token=token)
    assert (renamed.status, renamed.error_code) == (409, "conflict")


async def test_two_concurrent_creates_of_one_code_let_exactly_one_through(
    client: ApiClient, ctx: AppContext
) -> None:
    token = await staff_token(client, ctx)
    responses = await asyncio.gather(
        *(
            client.post(
                "catalog:discounts", json={"code": code, "kind": "percent", "value": 5}, token=token
            )
            for code in ("SAVE10", "save10")
        )
    )
    assert sorted(r.status for r in responses) == [201, 409]
    listed = await client.get("catalog:discounts", token=token)
    assert [d["code"] for d in listed.json()["results"]] == ["SAVE10"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": 0}, "value"),
        ({"value": 101}, "value"),
        ({"value": "12.5"}, "value"),
        ({"kind": "fixed", "value": "0.00"}, "value"),
        ({"kind": "fixed", "value": "1.234"}, "value"),
        ({"kind": "bogus"}, "kind"),
        ({"code": "no spaces"}, "code"),
        ({"category": "no-such-category"}, "category"),
        ({"starts_at": "2026-03-20T00:00:00"}, "starts_at"),
        ({"starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-05-01T00:00:00Z"}, "ends_at"),
        ({"max_uses": 0}, "max_uses"),
        ({"min_order_total": "abc"}, "min_order_total"),
    ],
)
async def test_invalid_discounts_are_field_errors(
    client: ApiClient, ctx: AppContext, body: dict[str, Any], field: str
) -> None:
    token = await staff_token(client, ctx)
    response = await client.post(
        "catalog:discounts",
        json={"code": "X1", "kind": "percent", "value": 10, **body},
        token=token,
    )
    assert response.status == 400, response.body
    assert list(response.json()["error"]["fields"]) == [field]


async def test_changing_the_kind_needs_a_value_of_that_kind(
    client: ApiClient, ctx: AppContext
) -> None:
    discount = await create_discount(ctx, "SAVE10", value=10)
    token = await staff_token(client, ctx)
    response = await client.patch(
        "catalog:discount", discount.id, json={"kind": "fixed"}, token=token
    )
    assert response.status == 400
    assert response.json()["error"]["fields"] == {"value": ["This field is required."]}
    nulled = await client.patch("catalog:discount", discount.id, json={"code": None}, token=token)
    assert nulled.json()["error"]["fields"] == {"code": ["This field cannot be null."]}


async def test_discounts_are_staff_only(client: ApiClient, ctx: AppContext) -> None:
    discount = await create_discount(ctx)
    shopper = await log_in(client, ctx, "shopper@example.com")
    calls = [
        ("GET", "catalog:discounts", (), None),
        ("POST", "catalog:discounts", (), {"code": "A", "kind": "percent", "value": 1}),
        ("GET", "catalog:discount", (discount.id,), None),
        ("PATCH", "catalog:discount", (discount.id,), {"is_active": False}),
        ("DELETE", "catalog:discount", (discount.id,), None),
    ]
    for method, route, args, body in calls:
        anonymous = await client.request(method, route, *args, json_body=body)
        assert anonymous.status == 401, (method, route)
        refused = await client.request(method, route, *args, json_body=body, token=shopper.token)
        assert refused.status == 403, (method, route)


async def test_unknown_discount_ids_are_404(client: ApiClient, ctx: AppContext) -> None:
    token = await staff_token(client, ctx)
    for method in ("GET", "PATCH", "DELETE"):
        body: dict[str, Any] | None = {} if method == "PATCH" else None
        response = await client.request(
            method, "catalog:discount", 999, json_body=body, token=token
        )
        assert (response.status, response.error_code) == (404, "not_found")
    for path in ("/api/v1/discounts/abc", "/api/v1/discounts/" + "9" * 30):
        assert (await client.get(path, token=token)).status == 404


async def test_discounts_are_listed_a_page_at_a_time(client: ApiClient, ctx: AppContext) -> None:
    for code in ("A1", "B2", "C3"):
        await create_discount(ctx, code)
    token = await staff_token(client, ctx)
    page = (await client.get("catalog:discounts", token=token, query="page_size=2&page=2")).json()
    assert (page["count"], [d["code"] for d in page["results"]]) == (3, ["C3"])
    assert page["next"] is None and page["previous"] is not None
