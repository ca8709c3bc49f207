"""/api/v1/orders: checkout over HTTP, reading orders, cancelling and staff updates."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from core.context import AppContext
from models.orders import Order
from tests.client import ApiClient
from tests.factories import count_rows, log_in
from tests.order_factories import (
    ADDRESS,
    add_discount,
    add_product,
    fill_cart,
    order_row,
    ordered,
    place_order,
    placed_order,
    set_order_status,
    shopper,
    shopper_with_cart,
    shoppers,
    stock_of,
    timeline,
)


async def test_ordering_answers_201_with_the_order_in_the_contract_shape(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, "brass-lamp", price_cents=1999)
    await add_discount(ctx, "SAVE10", kind="fixed", value=500)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 2})

    response = await place_order(client, buyer.token, discount_code="save10")

    assert response.status == 201
    order = response.json()
    assert set(order) == {
        "id",
        "status",
        "items",
        "subtotal",
        "discount_code",
        "discount_total",
        "total",
        "currency",
        "shipping_address",
        "created_at",
        "updated_at",
        "last_event_id",
    }
    assert order["status"] == "pending_payment"
    assert order["items"] == [
        {
            "product": "brass-lamp",
            "name": "Brass Lamp",
            "unit_price": "19.99",
            "quantity": 2,
            "line_total": "39.98",
        }
    ]
    assert (order["subtotal"], order["discount_total"], order["total"]) == (
        "39.98",
        "5.00",
        "34.98",
    )
    assert (order["discount_code"], order["currency"]) == ("SAVE10", "USD")
    assert order["shipping_address"] == {**ADDRESS, "line2": None}
    assert order["created_at"].endswith("Z")
    timeline = (await client.get("orders:events", order["id"], token=buyer.token)).json()
    assert order["last_event_id"] == timeline["results"][-1]["id"]


async def test_a_placed_order_keeps_its_prices_when_the_catalog_changes(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 1, price_cents=1000)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    repriced = await client.patch(
        "catalog:product", "brass-lamp", json={"price": "99.99"}, token=staff.token
    )
    assert repriced.status == 200
    again = (await client.get("orders:detail", order["id"], token=buyer.token)).json()
    assert again["items"][0]["unit_price"] == "10.00"
    assert again["total"] == "10.00"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "XX"}, "shipping_address.country"),
        ({"country": "EU"}, "shipping_address.country"),
        ({"country": "DEU"}, "shipping_address.country"),
        ({"postal_code": ""}, "shipping_address.postal_code"),
        ({"name": None}, "shipping_address.name"),
    ],
)
async def test_a_bad_shipping_address_is_400_naming_the_field(
    client: ApiClient, ctx: AppContext, change: dict[str, Any], field: str
) -> None:
    buyer = await shopper_with_cart(client, ctx)
    response = await client.post(
        "orders:list", json={"shipping_address": {**ADDRESS, **change}}, token=buyer.token
    )
    assert response.status == 400
    assert field in response.json()["error"]["fields"]


async def test_an_unknown_country_reads_as_a_country_code_error(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer = await shopper(ctx)
    response = await client.post(
        "orders:list", json={"shipping_address": {**ADDRESS, "country": "QQ"}}, token=buyer.token
    )
    assert response.json()["error"]["fields"]["shipping_address.country"] == [
        "Enter an ISO 3166-1 alpha-2 country code, such as DE."
    ]


async def test_a_lower_case_country_code_is_accepted_and_stored_upper_case(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer = await shopper_with_cart(client, ctx)
    response = await client.post(
        "orders:list",
        json={"shipping_address": {**ADDRESS, "country": "at", "line2": "Stiege 2"}},
        token=buyer.token,
    )
    assert response.status == 201
    assert response.json()["shipping_address"]["country"] == "AT"
    assert response.json()["shipping_address"]["line2"] == "Stiege 2"


async def test_an_empty_cart_is_400_cart_empty(client: ApiClient, ctx: AppContext) -> None:
    buyer = await shopper(ctx)
    response = await place_order(client, buyer.token)
    assert response.status == 400
    assert response.json()["error"] == {
        "code": "cart_empty",
        "message": "Your cart is empty.",
    }


async def test_short_stock_is_409_listing_the_products(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, "brass-lamp", stock=1)
    await add_product(ctx, "oak-desk", stock=0)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 2, "oak-desk": 1})
    response = await place_order(client, buyer.token)
    assert response.status == 409
    assert response.json()["error"] == {
        "code": "insufficient_stock",
        "message": "Not enough stock for: brass-lamp, oak-desk.",
    }


async def test_a_bad_discount_code_is_400_on_the_discount_field(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer = await shopper_with_cart(client, ctx)
    response = await place_order(client, buyer.token, discount_code="NOPE")
    assert response.status == 400
    assert list(response.json()["error"]["fields"]) == ["discount_code"]


async def test_a_retried_order_with_the_same_idempotency_key_is_200_with_the_first_order(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer = await shopper_with_cart(client, ctx, 2, stock=5)
    key = {"Idempotency-Key": "7f1c2a9e-order"}
    first = await place_order(client, buyer.token, headers=key)
    second = await place_order(client, buyer.token, headers=key)
    assert (first.status, second.status) == (201, 200)
    assert second.json() == first.json()
    assert await stock_of(ctx, "brass-lamp") == 3


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
async def test_an_empty_or_overlong_idempotency_key_is_400(
    client: ApiClient, ctx: AppContext, key: str
) -> None:
    buyer = await shopper(ctx)
    response = await place_order(client, buyer.token, headers={"Idempotency-Key": key})
    assert response.status == 400
    assert list(response.json()["error"]["fields"]) == ["Idempotency-Key"]


async def test_orders_list_shows_only_the_users_own_orders_newest_first(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=20)
    buyer, other = await shoppers(ctx, 2)
    ids = [(await ordered(client, buyer.token, {"brass-lamp": 1}))["id"] for _ in range(3)]
    await ordered(client, other.token, {"brass-lamp": 1})
    response = await client.get("orders:list", token=buyer.token, query="page_size=2")
    page = response.json()
    assert response.status == 200
    assert (page["count"], page["page"], page["page_size"]) == (3, 1, 2)
    assert [order["id"] for order in page["results"]] == [ids[2], ids[1]]
    assert page["next"] is not None and page["previous"] is None
    second = (await client.get("orders:list", token=buyer.token, query="page=2&page_size=2")).json()
    assert [order["id"] for order in second["results"]] == [ids[0]]


async def test_an_order_is_visible_to_its_owner_and_staff_and_404_to_anyone_else(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx)
    buyer, stranger = await shoppers(ctx, 2)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    order = await ordered(client, buyer.token, {"brass-lamp": 1})
    assert (await client.get("orders:detail", order["id"], token=buyer.token)).status == 200
    assert (await client.get("orders:detail", order["id"], token=staff.token)).status == 200
    hidden = await client.get("orders:detail", order["id"], token=stranger.token)
    assert hidden.status == 404 and hidden.error_code == "not_found"
    assert (await client.get("orders:events", order["id"], token=stranger.token)).status == 404
    assert (await client.post("orders:cancel", order["id"], token=stranger.token)).status == 404
    assert (await client.get("orders:detail", 999999, token=buyer.token)).status == 404
    assert (await client.get("/api/v1/orders/" + "9" * 30, token=buyer.token)).status == 404


async def test_orders_need_authentication(client: ApiClient) -> None:
    assert (await client.get("orders:list")).status == 401
    assert (await client.post("orders:list", json={"shipping_address": ADDRESS})).status == 401


async def test_a_deactivated_shoppers_token_neither_orders_nor_reads(
    client: ApiClient, ctx: AppContext
) -> None:
    # Checkout reads the user inside its own transaction; the list reads it in prepare().
    await add_product(ctx, "brass-lamp", stock=5)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 2})
    async with ctx.sessionmaker() as session, session.begin():
        (await session.merge(buyer.user)).is_active = False

    refused = await place_order(client, buyer.token)
    listed = await client.get("orders:list", token=buyer.token)

    assert (refused.status, refused.error_code) == (401, "not_authenticated")
    assert (listed.status, listed.error_code) == (401, "not_authenticated")
    assert await stock_of(ctx, "brass-lamp") == 5
    assert await count_rows(ctx, Order) == 0
    async with ctx.sessionmaker() as session, session.begin():
        (await session.merge(buyer.user)).is_active = True
    cart = await client.get("cart:detail", token=buyer.token)
    assert [item["quantity"] for item in cart.json()["items"]] == [2]


async def test_cancelling_restores_the_stock_once(client: ApiClient, ctx: AppContext) -> None:
    buyer, order = await placed_order(client, ctx, 3, stock=5)
    assert await stock_of(ctx, "brass-lamp") == 2

    first = await client.post("orders:cancel", order["id"], token=buyer.token)
    again = await client.post("orders:cancel", order["id"], token=buyer.token)

    assert (first.status, again.status) == (200, 200)
    assert first.json()["status"] == "cancelled"
    assert await stock_of(ctx, "brass-lamp") == 5
    assert await timeline(ctx, order["id"]) == ["pending_payment", "cancelled"]


async def test_cancelling_after_a_failed_payment_restores_nothing_more(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 3, stock=5)
    await set_order_status(ctx, order["id"], "payment_failed")  # its stock went back then
    response = await client.post("orders:cancel", order["id"], token=buyer.token)
    assert response.status == 200 and response.json()["status"] == "cancelled"
    assert await stock_of(ctx, "brass-lamp") == 2


async def test_cancelling_a_paid_order_without_stripe_restores_stock_and_logs_no_refund(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 2, stock=5)
    await set_order_status(ctx, order["id"], "paid")
    response = await client.post("orders:cancel", order["id"], token=buyer.token)
    assert response.status == 200 and response.json()["status"] == "cancelled"
    assert await stock_of(ctx, "brass-lamp") == 5


@pytest.mark.parametrize("status", ["processing", "shipped", "delivered", "expired"])
async def test_an_order_past_payment_cannot_be_cancelled(
    client: ApiClient, ctx: AppContext, status: str
) -> None:
    buyer, order = await placed_order(client, ctx, 1, stock=5)
    await set_order_status(ctx, order["id"], status)
    response = await client.post("orders:cancel", order["id"], token=buyer.token)
    assert response.status == 409
    assert response.json()["error"] == {
        "code": "conflict",
        "message": f"An order that is {status} cannot become cancelled.",
    }
    assert (await order_row(ctx, order["id"])).status == status


async def test_the_timeline_lists_every_status_with_its_time(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx)
    await client.post("orders:cancel", order["id"], token=buyer.token)
    response = await client.get("orders:events", order["id"], token=buyer.token)
    assert response.status == 200
    events = response.json()["results"]
    assert [event["status"] for event in events] == ["pending_payment", "cancelled"]
    assert events[0]["id"] < events[1]["id"]
    assert all(event["at"].endswith("Z") for event in events)


async def test_staff_move_a_paid_order_to_processing_shipped_and_delivered(
    client: ApiClient, ctx: AppContext
) -> None:
    _, order = await placed_order(client, ctx)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    await set_order_status(ctx, order["id"], "paid")
    for status in ("processing", "shipped", "delivered"):
        response = await client.patch(
            "orders:status", order["id"], json={"status": status}, token=staff.token
        )
        assert response.status == 200
        assert response.json()["status"] == status
    assert await timeline(ctx, order["id"]) == [
        "pending_payment",
        "processing",
        "shipped",
        "delivered",
    ]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("pending_payment", "processing"),
        ("paid", "shipped"),
        ("paid", "delivered"),
        ("shipped", "processing"),
        ("delivered", "shipped"),
        ("cancelled", "processing"),
        ("pending_payment", "paid"),
        ("paid", "refunded"),
        ("pending_payment", "cancelled"),
    ],
)
async def test_staff_cannot_make_any_other_move(
    client: ApiClient, ctx: AppContext, current: str, target: str
) -> None:
    _, order = await placed_order(client, ctx)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    await set_order_status(ctx, order["id"], current)
    response = await client.patch(
        "orders:status", order["id"], json={"status": target}, token=staff.token
    )
    assert response.status == 409
    assert response.error_code == "conflict"
    assert (await order_row(ctx, order["id"])).status == current


async def test_setting_the_current_status_again_changes_nothing(
    client: ApiClient, ctx: AppContext
) -> None:
    _, order = await placed_order(client, ctx)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    await set_order_status(ctx, order["id"], "shipped")
    response = await client.patch(
        "orders:status", order["id"], json={"status": "shipped"}, token=staff.token
    )
    assert response.status == 200
    assert await timeline(ctx, order["id"]) == ["pending_payment"]


async def test_only_staff_update_an_order_status(client: ApiClient, ctx: AppContext) -> None:
    buyer, order = await placed_order(client, ctx)
    response = await client.patch(
        "orders:status", order["id"], json={"status": "processing"}, token=buyer.token
    )
    assert response.status == 403 and response.error_code == "permission_denied"


async def test_an_unknown_status_is_400_and_an_unknown_order_404(
    client: ApiClient, ctx: AppContext
) -> None:
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    bad = await client.patch("orders:status", 1, json={"status": "lost"}, token=staff.token)
    assert bad.status == 400 and "status" in bad.json()["error"]["fields"]
    missing = await client.patch(
        "orders:status", 424242, json={"status": "processing"}, token=staff.token
    )
    assert missing.status == 404


async def test_the_cached_product_page_shows_the_stock_orders_take_and_give_back(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=5)
    buyer = await shopper(ctx)
    assert (await client.get("catalog:product", "brass-lamp")).json()["stock"] == 5  # cached now
    order = await ordered(client, buyer.token, {"brass-lamp": 5})
    product = (await client.get("catalog:product", "brass-lamp")).json()
    assert (product["stock"], product["in_stock"]) == (0, False)
    await client.post("orders:cancel", order["id"], token=buyer.token)
    assert (await client.get("catalog:product", "brass-lamp")).json()["stock"] == 5


async def test_the_openapi_document_describes_the_checkout_endpoints(client: ApiClient) -> None:
    document = (await client.get("/openapi.json")).json()
    validate(document)
    paths = document["paths"]
    create = paths["/api/v1/orders"]["post"]
    assert create["security"] == [{"bearerAuth": []}]
    assert {"201", "400", "401", "409"} <= set(create["responses"])
    assert "OrderCreate" in create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(paths["/api/v1/orders/{order_id}/pay"]["post"]["responses"]) >= {"200", "503"}
    assert set(paths["/api/v1/cart/items/{slug}"]) == {"patch", "delete"}
    assert "security" not in paths["/api/v1/payments/stripe/webhook"]["post"]
    address = document["components"]["schemas"]["ShippingAddress"]
    assert set(address["required"]) == {"name", "line1", "city", "postal_code", "country"}
