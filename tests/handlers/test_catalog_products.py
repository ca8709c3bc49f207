"""/api/v1/products: staff writes, public reads, filters and pagination."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from core.context import AppContext
from tests.catalog_factories import create_category, create_product
from tests.client import ApiClient
from tests.factories import log_in


async def staff_token(client: ApiClient, ctx: AppContext) -> str:
    return (await log_in(client, ctx, "staff@example.com", staff=True)).token


def local(url: str) -> str:
    """A next/previous link as a path the test client can fetch."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def slugs(response: object) -> list[str]:
    return [p["slug"] for p in response.json()["results"]]  # type: ignore[attr-defined]


async def test_staff_create_a_product_that_anyone_can_read(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_category(ctx, "Lighting")
    token = await staff_token(client, ctx)
    created = await client.post(
        "catalog:products",
        json={"name": "Brass Desk Lamp", "price": "49.90", "stock": 3, "category": "lighting"},
        token=token,
    )
    assert created.status == 201, created.body
    product = created.json()
    assert product == {
        "id": product["id"],
        "slug": "brass-desk-lamp",
        "name": "Brass Desk Lamp",
        "description": "",
        "price": "49.90",
        "currency": "USD",
        "category": "lighting",
        "stock": 3,
        "in_stock": True,
        "rating_avg": None,
        "rating_count": 0,
        "is_active": True,
        "created_at": product["created_at"],
        "updated_at": product["updated_at"],
    }
    assert product["created_at"].endswith("Z")
    shown = await client.get("catalog:product", "brass-desk-lamp")
    assert shown.status == 200
    assert shown.json() == product


async def test_slug_comes_from_the_name_with_a_suffix_when_taken(
    client: ApiClient, ctx: AppContext
) -> None:
    token = await staff_token(client, ctx)
    made = [
        (
            await client.post(
                "catalog:products", json={"name": "Brass Desk Lamp", "price": "10"}, token=token
            )
        ).json()["slug"]
        for _ in range(3)
    ]
    assert made == ["brass-desk-lamp", "brass-desk-lamp-2", "brass-desk-lamp-3"]


async def test_a_slug_chosen_by_staff_must_be_free(client: ApiClient, ctx: AppContext) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    token = await staff_token(client, ctx)
    taken = await client.post(
        "catalog:products",
        json={"name": "Other", "slug": "brass-desk-lamp", "price": "1.00"},
        token=token,
    )
    assert taken.status == 409
    assert taken.error_code == "conflict"
    assert taken.json()["error"]["fields"] == {"slug": ["This slug is already in use."]}
    renamed = await client.patch(
        "catalog:product", "brass-desk-lamp", json={"slug": "lamp"}, token=token
    )
    assert renamed.status == 200
    assert (await client.get("catalog:product", "lamp")).status == 200
    assert (await client.get("catalog:product", "brass-desk-lamp")).status == 404


async def test_staff_patch_only_the_fields_they_send(client: ApiClient, ctx: AppContext) -> None:
    lighting = await create_category(ctx, "Lighting")
    await create_product(ctx, "Brass Desk Lamp", price="10.00", stock=2, category=lighting)
    token = await staff_token(client, ctx)
    response = await client.patch(
        "catalog:product",
        "brass-desk-lamp",
        json={"price": "12.50", "stock": 0, "category": None, "name": "Brass Lamp"},
        token=token,
    )
    assert response.status == 200
    body = response.json()
    assert (body["price"], body["stock"], body["in_stock"]) == ("12.50", 0, False)
    assert (body["category"], body["name"], body["slug"]) == (None, "Brass Lamp", "brass-desk-lamp")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"price": "19.999"}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": "99999999.00"}, "price"),
        ({"stock": -1}, "stock"),
        ({"name": None}, "name"),
        ({"slug": "Not A Slug"}, "slug"),
        ({"category": "no-such-category"}, "category"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_invalid_product_changes_are_field_errors(
    client: ApiClient, ctx: AppContext, body: dict[str, object], field: str
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    token = await staff_token(client, ctx)
    response = await client.patch("catalog:product", "brass-desk-lamp", json=body, token=token)
    assert response.status == 400
    assert response.error_code == "validation_error"
    assert list(response.json()["error"]["fields"]) == [field]


async def test_staff_delete_a_product(client: ApiClient, ctx: AppContext) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    token = await staff_token(client, ctx)
    assert (await client.delete("catalog:product", "brass-desk-lamp", token=token)).status == 204
    assert (await client.get("catalog:product", "brass-desk-lamp")).status == 404


async def test_every_write_is_401_anonymous_and_403_for_shoppers(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_category(ctx, "Lighting")
    await create_product(ctx, "Brass Desk Lamp")
    shopper = await log_in(client, ctx, "shopper@example.com")
    writes = [
        ("POST", "catalog:products", (), {"name": "Lamp", "price": "1.00"}),
        ("PATCH", "catalog:product", ("brass-desk-lamp",), {"stock": 0}),
        ("DELETE", "catalog:product", ("brass-desk-lamp",), None),
        ("POST", "catalog:categories", (), {"name": "Garden"}),
        ("PATCH", "catalog:category", ("lighting",), {"name": "Lamps"}),
        ("DELETE", "catalog:category", ("lighting",), None),
    ]
    for method, route, args, body in writes:
        anonymous = await client.request(method, route, *args, json_body=body)
        assert (anonymous.status, anonymous.error_code) == (401, "not_authenticated"), route
        refused = await client.request(method, route, *args, json_body=body, token=shopper.token)
        assert (refused.status, refused.error_code) == (403, "permission_denied"), route
    assert (await client.get("catalog:product", "brass-desk-lamp")).json()["stock"] == 5


async def test_unknown_slugs_are_404(client: ApiClient, ctx: AppContext) -> None:
    token = await staff_token(client, ctx)
    for method, route in [
        ("GET", "catalog:product"),
        ("PATCH", "catalog:product"),
        ("DELETE", "catalog:product"),
        ("PATCH", "catalog:category"),
        ("DELETE", "catalog:category"),
        ("GET", "catalog:product-reviews"),
    ]:
        body: dict[str, Any] | None = {} if method == "PATCH" else None
        response = await client.request(method, route, "nothing", json_body=body, token=token)
        assert (response.status, response.error_code) == (404, "not_found"), (method, route)


async def test_inactive_products_are_hidden_from_shoppers_but_shown_to_staff(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    await create_product(ctx, "Old Lamp", is_active=False)
    shopper = await log_in(client, ctx, "shopper@example.com")
    token = await staff_token(client, ctx)
    for viewer in (None, shopper.token):
        assert slugs(await client.get("catalog:products", token=viewer)) == ["brass-desk-lamp"]
        assert (await client.get("catalog:product", "old-lamp", token=viewer)).status == 404
    staff_list = await client.get("catalog:products", token=token, query="ordering=name")
    assert slugs(staff_list) == ["brass-desk-lamp", "old-lamp"]
    staff_view = await client.get("catalog:product", "old-lamp", token=token)
    assert staff_view.json()["is_active"] is False


async def test_products_filter_by_category_price_and_name(
    client: ApiClient, ctx: AppContext
) -> None:
    lighting = await create_category(ctx, "Lighting")
    await create_product(ctx, "Brass Desk Lamp", price="49.00", category=lighting)
    await create_product(ctx, "Paper Lamp", price="15.00", category=lighting)
    await create_product(ctx, "Oak Desk", price="250.00")
    cases = {
        "category=lighting": ["brass-desk-lamp", "paper-lamp"],
        "min_price=20&max_price=100": ["brass-desk-lamp"],
        "min_price=15.00&max_price=15.00": ["paper-lamp"],
        "q=DESK": ["brass-desk-lamp", "oak-desk"],
        "q=lamp&category=lighting&max_price=20": ["paper-lamp"],
        "q=%25": [],
        "q=&category=": ["brass-desk-lamp", "oak-desk", "paper-lamp"],
    }
    for query, expected in cases.items():
        response = await client.get("catalog:products", query=f"{query}&ordering=name")
        assert response.status == 200, query
        assert slugs(response) == expected, query


async def test_products_sort_by_each_ordering(client: ApiClient, ctx: AppContext) -> None:
    for name, price in [("Bravo", "2.00"), ("Alpha", "3.00"), ("Charlie", "1.00")]:
        await create_product(ctx, name, price=price)
    expected = {
        "price": ["charlie", "bravo", "alpha"],
        "-price": ["alpha", "bravo", "charlie"],
        "name": ["alpha", "bravo", "charlie"],
        "-created": ["charlie", "alpha", "bravo"],
    }
    for ordering, order in expected.items():
        response = await client.get("catalog:products", query=f"ordering={ordering}")
        assert slugs(response) == order, ordering


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("min_price=abc", "min_price"),
        ("max_price=1.234", "max_price"),
        ("min_price=-5", "min_price"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("page_size=0", "page_size"),
        ("ordering=stock", "ordering"),
        ("category=no-such-category", "category"),
    ],
)
async def test_bad_list_parameters_are_400(client: ApiClient, query: str, field: str) -> None:
    response = await client.get("catalog:products", query=query)
    assert response.status == 400
    assert response.error_code == "validation_error"
    assert list(response.json()["error"]["fields"]) == [field]


@pytest.mark.settings(max_page_size=2)
async def test_page_size_is_clamped_and_pages_link_to_each_other(
    client: ApiClient, ctx: AppContext
) -> None:
    for name in ("Alpha", "Bravo", "Charlie"):
        await create_product(ctx, name)
    first = (await client.get("catalog:products", query="ordering=name&page_size=500")).json()
    assert (first["count"], first["page"], first["page_size"]) == (3, 1, 2)
    assert [p["slug"] for p in first["results"]] == ["alpha", "bravo"]
    assert first["previous"] is None
    second = await client.get(local(first["next"]))
    assert [p["slug"] for p in second.json()["results"]] == ["charlie"]
    assert second.json()["next"] is None
    past_the_end = (await client.get("catalog:products", query="page=9&page_size=2")).json()
    assert past_the_end["count"] == 3 and past_the_end["results"] == []
    assert past_the_end["previous"] is not None


async def test_the_openapi_document_describes_the_catalog(client: ApiClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    listing = paths["/api/v1/products"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "category",
        "min_price",
        "max_price",
        "q",
        "ordering",
        "page",
        "page_size",
    }
    assert "security" not in listing
    create = paths["/api/v1/products"]["post"]
    assert create["security"] == [{"bearerAuth": []}]
    assert {"201", "400", "401", "403", "409"} <= set(create["responses"])
    assert [p["name"] for p in paths["/api/v1/products/{slug}"]["patch"]["parameters"]] == ["slug"]
    for path in (
        "/api/v1/categories/{slug}",
        "/api/v1/discounts/{discount_id}",
        "/api/v1/products/{slug}/reviews",
        "/api/v1/reviews/{review_id}",
    ):
        assert path in paths
    product = document["components"]["schemas"]["ProductOut"]["properties"]
    assert product["price"]["type"] == "string"
    assert product["category"]["nullable"] is True
