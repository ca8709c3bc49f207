"""/api/v1/categories: public list, staff writes."""

from __future__ import annotations

from core.context import AppContext
from tests.catalog_factories import create_category, create_discount, create_product
from tests.client import ApiClient
from tests.factories import log_in


async def test_staff_create_rename_and_delete_a_category(
    client: ApiClient, ctx: AppContext
) -> None:
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    created = await client.post(
        "catalog:categories", json={"name": "Desk Lighting"}, token=staff.token
    )
    assert created.status == 201
    assert created.json() == {
        "id": created.json()["id"],
        "slug": "desk-lighting",
        "name": "Desk Lighting",
    }
    renamed = await client.patch(
        "catalog:category", "desk-lighting", json={"name": "Desk lamps"}, token=staff.token
    )
    assert renamed.json() == {**created.json(), "name": "Desk lamps"}
    deleted = await client.delete("catalog:category", "desk-lighting", token=staff.token)
    assert deleted.status == 204
    assert (await client.get("catalog:categories")).json()["results"] == []


async def test_category_slugs_are_unique(client: ApiClient, ctx: AppContext) -> None:
    await create_category(ctx, "Lighting")
    await create_category(ctx, "Garden")
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    generated = await client.post(
        "catalog:categories", json={"name": "Lighting"}, token=staff.token
    )
    assert generated.json()["slug"] == "lighting-2"
    given = await client.post(
        "catalog:categories", json={"name": "Lamps", "slug": "lighting"}, token=staff.token
    )
    assert (given.status, given.error_code) == (409, "conflict")
    moved = await client.patch(
        "catalog:category", "garden", json={"slug": "lighting"}, token=staff.token
    )
    assert (moved.status, moved.json()["error"]["fields"]) == (
        409,
        {"slug": ["This slug is already in use."]},
    )


async def test_deleting_a_category_keeps_its_products_uncategorised(
    client: ApiClient, ctx: AppContext
) -> None:
    lighting = await create_category(ctx, "Lighting")
    await create_product(ctx, "Brass Desk Lamp", category=lighting)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    assert (await client.delete("catalog:category", "lighting", token=staff.token)).status == 204
    product = await client.get("catalog:product", "brass-desk-lamp")
    assert product.json()["category"] is None


async def test_a_category_a_discount_is_limited_to_cannot_be_deleted(
    client: ApiClient, ctx: AppContext
) -> None:
    lighting = await create_category(ctx, "Lighting")
    await create_discount(ctx, "LAMPS20", value=20, category=lighting)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    refused = await client.delete("catalog:category", "lighting", token=staff.token)
    assert (refused.status, refused.error_code) == (409, "conflict")
    assert [c["slug"] for c in (await client.get("catalog:categories")).json()["results"]] == [
        "lighting"
    ]


async def test_categories_are_listed_by_name_a_page_at_a_time(
    client: ApiClient, ctx: AppContext
) -> None:
    for name in ("Outdoors", "Kitchen", "Lighting"):
        await create_category(ctx, name)
    page = (await client.get("catalog:categories", query="page_size=2")).json()
    assert page["count"] == 3
    assert [c["name"] for c in page["results"]] == ["Kitchen", "Lighting"]
    assert page["next"] is not None
    last = (await client.get("catalog:categories", query="page_size=2&page=2")).json()
    assert [c["name"] for c in last["results"]] == ["Outdoors"]


async def test_invalid_categories_are_field_errors(client: ApiClient, ctx: AppContext) -> None:
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    for body, field in [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "Lamps", "slug": "Bad Slug"}, "slug"),
    ]:
        response = await client.post("catalog:categories", json=body, token=staff.token)
        assert response.status == 400, body
        assert list(response.json()["error"]["fields"]) == [field], body


async def test_anyone_reads_one_category_and_sees_its_changes(
    client: ApiClient, ctx: AppContext
) -> None:
    category = await create_category(ctx, "Desk Lighting")
    shown = await client.get("catalog:category", "desk-lighting")
    assert shown.status == 200
    assert shown.json() == {"id": category.id, "slug": "desk-lighting", "name": "Desk Lighting"}
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    await client.patch(
        "catalog:category", "desk-lighting", json={"name": "Desk lamps"}, token=staff.token
    )
    assert (await client.get("catalog:category", "desk-lighting")).json()["name"] == "Desk lamps"
    await client.delete("catalog:category", "desk-lighting", token=staff.token)
    gone = await client.get("catalog:category", "desk-lighting")
    assert (gone.status, gone.error_code) == (404, "not_found")
