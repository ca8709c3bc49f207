"""Product reviews: one per user, throttled, editable by author or staff, and the
product's rating kept exact through every change."""

from __future__ import annotations

from typing import Any

import pytest

from core.context import AppContext
from tests.catalog_factories import create_product
from tests.client import ApiClient, Response
from tests.factories import LoggedIn, log_in

LAMP = "brass-desk-lamp"


async def review(
    client: ApiClient, who: LoggedIn, rating: int, product: str = LAMP, title: str = "Nice"
) -> Response:
    return await client.post(
        "catalog:product-reviews",
        product,
        json={"rating": rating, "title": title, "body": "Warm light."},
        token=who.token,
    )


async def rating(client: ApiClient, product: str = LAMP) -> tuple[Any, int]:
    shown = (await client.get("catalog:product", product)).json()
    return shown["rating_avg"], shown["rating_count"]


async def test_a_shopper_reviews_a_product_and_its_rating_follows(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    ada = await log_in(client, ctx, "ada@example.com")
    assert await rating(client) == (None, 0)  # now cached
    created = await review(client, ada, 4)
    assert created.status == 201, created.body
    body = created.json()
    assert body == {
        "id": body["id"],
        "product": LAMP,
        "user_id": ada.user.id,
        "author": "Sam Shopper",
        "rating": 4,
        "title": "Nice",
        "body": "Warm light.",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert await rating(client) == (4.0, 1)


async def test_create_update_and_delete_each_recompute_the_rating(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    ada, bob, cy = [
        await log_in(client, ctx, f"{name}@example.com") for name in ("ada", "bob", "cy")
    ]
    await review(client, ada, 5)
    await review(client, bob, 4)
    cys = (await review(client, cy, 4)).json()
    assert await rating(client) == (4.33, 3)
    changed = await client.patch("catalog:review", cys["id"], json={"rating": 1}, token=cy.token)
    assert (changed.status, changed.json()["rating"]) == (200, 1)
    assert await rating(client) == (3.33, 3)
    assert (await client.delete("catalog:review", cys["id"], token=cy.token)).status == 204
    assert await rating(client) == (4.5, 2)


async def test_a_second_review_of_the_same_product_is_409(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    ada = await log_in(client, ctx, "ada@example.com")
    assert (await review(client, ada, 5)).status == 201
    again = await review(client, ada, 1)
    assert (again.status, again.error_code) == (409, "conflict")
    assert again.json()["error"]["message"] == "You have already reviewed this product."
    assert await rating(client) == (5.0, 1)


@pytest.mark.settings(review_rate_limit="2/hour")
async def test_reviewing_faster_than_the_limit_is_429(client: ApiClient, ctx: AppContext) -> None:
    for name in ("One", "Two", "Three"):
        await create_product(ctx, name)
    ada = await log_in(client, ctx, "ada@example.com")
    assert (await review(client, ada, 5, "one")).status == 201
    assert (await review(client, ada, 5, "two")).status == 201
    throttled = await review(client, ada, 5, "three")
    assert (throttled.status, throttled.error_code) == (429, "rate_limited")
    assert int(throttled.headers["Retry-After"]) > 0
    bob = await log_in(client, ctx, "bob@example.com")
    assert (await review(client, bob, 5, "three")).status == 201, "the limit is per user"


async def test_reviews_are_listed_newest_first_a_page_at_a_time(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    for name in ("ada", "bob", "cy"):
        await review(client, await log_in(client, ctx, f"{name}@example.com"), 5, title=name)
    first = (await client.get("catalog:product-reviews", LAMP, query="page_size=2")).json()
    assert (first["count"], [r["title"] for r in first["results"]]) == (3, ["cy", "bob"])
    second = await client.get("catalog:product-reviews", LAMP, query="page_size=2&page=2")
    assert [r["title"] for r in second.json()["results"]] == ["ada"]
    empty = await client.get("catalog:product-reviews", LAMP, query="page=3&page_size=2")
    assert empty.json()["results"] == []


async def test_only_the_author_or_staff_change_a_review(client: ApiClient, ctx: AppContext) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    ada = await log_in(client, ctx, "ada@example.com")
    bob = await log_in(client, ctx, "bob@example.com")
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    review_id = (await review(client, ada, 5)).json()["id"]

    anonymous = await client.patch("catalog:review", review_id, json={"rating": 1})
    assert anonymous.status == 401
    for method, body in (("PATCH", {"rating": 1}), ("DELETE", None)):
        stranger = await client.request(
            method, "catalog:review", review_id, json_body=body, token=bob.token
        )
        assert (stranger.status, stranger.error_code) == (403, "permission_denied")
    assert await rating(client) == (5.0, 1)

    moderated = await client.patch(
        "catalog:review", review_id, json={"title": "Edited"}, token=staff.token
    )
    assert moderated.json()["title"] == "Edited"
    assert (await client.delete("catalog:review", review_id, token=staff.token)).status == 204
    assert await rating(client) == (None, 0)


async def test_unknown_reviews_are_404(client: ApiClient, ctx: AppContext) -> None:
    ada = await log_in(client, ctx, "ada@example.com")
    for method, body in (("PATCH", {"rating": 1}), ("DELETE", None)):
        response = await client.request(
            method, "catalog:review", 12345, json_body=body, token=ada.token
        )
        assert (response.status, response.error_code) == (404, "not_found")
    assert (await review(client, ada, 5, "no-such-product")).status == 404


async def test_inactive_products_take_no_reviews_from_shoppers(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_product(ctx, "Old Lamp", is_active=False)
    ada = await log_in(client, ctx, "ada@example.com")
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    assert (await review(client, ada, 5, "old-lamp")).status == 404
    assert (await client.get("catalog:product-reviews", "old-lamp")).status == 404
    assert (await review(client, staff, 5, "old-lamp")).status == 201
    listed = await client.get("catalog:product-reviews", "old-lamp", token=staff.token)
    assert listed.json()["count"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0, "title": "x"}, "rating"),
        ({"rating": 6, "title": "x"}, "rating"),
        ({"rating": 5}, "title"),
        ({"rating": 5, "title": "x" * 201}, "title"),
    ],
)
async def test_invalid_reviews_are_field_errors(
    client: ApiClient, ctx: AppContext, body: dict[str, Any], field: str
) -> None:
    await create_product(ctx, "Brass Desk Lamp")
    ada = await log_in(client, ctx, "ada@example.com")
    response = await client.post("catalog:product-reviews", LAMP, json=body, token=ada.token)
    assert response.status == 400
    assert list(response.json()["error"]["fields"]) == [field]
