"""The cart: adding, changing and removing lines; stock is reported, not reserved."""

from __future__ import annotations

import asyncio

import pytest

from core.context import AppContext
from tests.client import ApiClient
from tests.order_factories import (
    add_product,
    fill_cart,
    shopper,
    shopper_with_cart,
    shoppers,
)


async def test_a_new_user_has_an_empty_cart(client: ApiClient, ctx: AppContext) -> None:
    buyer = await shopper(ctx)
    response = await client.get("cart:detail", token=buyer.token)
    assert response.status == 200
    assert response.json() == {"items": [], "subtotal": "0.00", "currency": None}


async def test_the_cart_needs_authentication(client: ApiClient) -> None:
    response = await client.get("cart:detail")
    assert response.status == 401
    assert response.error_code == "not_authenticated"


async def test_adding_a_product_answers_201_with_the_priced_cart(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, "brass-lamp", price_cents=1999, stock=5)
    buyer = await shopper(ctx)
    response = await client.post(
        "cart:items", json={"product": "brass-lamp", "quantity": 2}, token=buyer.token
    )
    assert response.status == 201
    assert response.json() == {
        "items": [
            {
                "product": "brass-lamp",
                "quantity": 2,
                "unit_price": "19.99",
                "line_total": "39.98",
                "available": 5,
            }
        ],
        "subtotal": "39.98",
        "currency": "USD",
    }


async def test_adding_a_product_again_adds_to_its_line(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, "brass-lamp", price_cents=1000)
    await add_product(ctx, "oak-desk", price_cents=25000)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 1, "oak-desk": 1})
    response = await client.post(
        "cart:items", json={"product": "brass-lamp", "quantity": 2}, token=buyer.token
    )
    cart = response.json()
    assert [(line["product"], line["quantity"]) for line in cart["items"]] == [
        ("brass-lamp", 3),
        ("oak-desk", 1),
    ]
    assert cart["subtotal"] == "280.00"


async def test_the_quantity_defaults_to_one(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx)
    buyer = await shopper(ctx)
    response = await client.post("cart:items", json={"product": "brass-lamp"}, token=buyer.token)
    assert response.json()["items"][0]["quantity"] == 1


async def test_more_than_the_stock_may_be_added_and_is_reported_as_available(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=3)
    buyer = await shopper(ctx)
    response = await client.post(
        "cart:items", json={"product": "brass-lamp", "quantity": 5}, token=buyer.token
    )
    assert response.status == 201
    [line] = response.json()["items"]
    assert (line["quantity"], line["available"]) == (5, 3)


async def test_an_unknown_product_is_404(client: ApiClient, ctx: AppContext) -> None:
    buyer = await shopper(ctx)
    response = await client.post("cart:items", json={"product": "nothing"}, token=buyer.token)
    assert response.status == 404
    assert response.error_code == "not_found"


async def test_an_inactive_product_is_404(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, is_active=False)
    buyer = await shopper(ctx)
    response = await client.post("cart:items", json={"product": "brass-lamp"}, token=buyer.token)
    assert response.status == 404


async def test_a_product_withdrawn_after_adding_shows_nothing_available(
    client: ApiClient, ctx: AppContext
) -> None:
    product = await add_product(ctx, stock=8)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 1})
    async with ctx.sessionmaker() as session, session.begin():
        (await session.merge(product)).is_active = False
    [line] = (await client.get("cart:detail", token=buyer.token)).json()["items"]
    assert line["available"] == 0


@pytest.mark.parametrize("quantity", [0, -1, 100, "2", 1.5, True, None])
async def test_a_quantity_outside_1_to_99_or_not_an_integer_is_refused(
    client: ApiClient, ctx: AppContext, quantity: object
) -> None:
    await add_product(ctx)
    buyer = await shopper(ctx)
    response = await client.post(
        "cart:items", json={"product": "brass-lamp", "quantity": quantity}, token=buyer.token
    )
    assert response.status == 400
    assert response.error_code == "validation_error"
    assert "quantity" in response.json()["error"]["fields"]


async def test_a_line_cannot_grow_past_99(client: ApiClient, ctx: AppContext) -> None:
    buyer = await shopper_with_cart(client, ctx, 90, stock=500)
    response = await client.post(
        "cart:items", json={"product": "brass-lamp", "quantity": 10}, token=buyer.token
    )
    assert response.status == 400
    assert response.json()["error"]["fields"] == {
        "quantity": ["A cart holds at most 99 of each product."]
    }
    [line] = (await client.get("cart:detail", token=buyer.token)).json()["items"]
    assert line["quantity"] == 90


async def test_products_in_another_currency_are_refused(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, "brass-lamp", currency="USD")
    await add_product(ctx, "euro-lamp", currency="EUR")
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 1})
    response = await client.post("cart:items", json={"product": "euro-lamp"}, token=buyer.token)
    assert response.status == 400
    assert "USD" in response.json()["error"]["fields"]["product"][0]


async def test_patch_replaces_the_quantity(client: ApiClient, ctx: AppContext) -> None:
    buyer = await shopper_with_cart(client, ctx, 4)
    response = await client.patch(
        "cart:item", "brass-lamp", json={"quantity": 2}, token=buyer.token
    )
    assert response.status == 200
    assert response.json()["items"][0]["quantity"] == 2
    assert response.json()["subtotal"] == "39.98"


async def test_patch_of_a_product_not_in_the_cart_is_404(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx)
    buyer = await shopper(ctx)
    response = await client.patch(
        "cart:item", "brass-lamp", json={"quantity": 2}, token=buyer.token
    )
    assert response.status == 404


async def test_patch_to_zero_is_refused(client: ApiClient, ctx: AppContext) -> None:
    buyer = await shopper_with_cart(client, ctx)
    response = await client.patch(
        "cart:item", "brass-lamp", json={"quantity": 0}, token=buyer.token
    )
    assert response.status == 400


async def test_deleting_a_line_answers_the_remaining_cart(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, "brass-lamp")
    await add_product(ctx, "oak-desk", price_cents=500)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 1, "oak-desk": 2})
    response = await client.delete("cart:item", "brass-lamp", token=buyer.token)
    assert response.status == 200
    assert [line["product"] for line in response.json()["items"]] == ["oak-desk"]
    assert response.json()["subtotal"] == "10.00"


async def test_deleting_a_line_that_is_not_there_is_404(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx)
    buyer = await shopper(ctx)
    assert (await client.delete("cart:item", "brass-lamp", token=buyer.token)).status == 404
    await fill_cart(client, buyer.token, {"brass-lamp": 1})
    assert (await client.delete("cart:item", "no-such-thing", token=buyer.token)).status == 404


async def test_deleting_the_cart_empties_it(client: ApiClient, ctx: AppContext) -> None:
    buyer = await shopper_with_cart(client, ctx)
    response = await client.delete("cart:detail", token=buyer.token)
    assert response.status == 204
    assert (await client.get("cart:detail", token=buyer.token)).json()["items"] == []
    assert (await client.delete("cart:detail", token=buyer.token)).status == 204


async def test_each_user_sees_only_their_own_cart(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx)
    first, second = await shoppers(ctx, 2)
    await fill_cart(client, first.token, {"brass-lamp": 1})
    assert (await client.get("cart:detail", token=second.token)).json()["items"] == []
    assert (await client.delete("cart:item", "brass-lamp", token=second.token)).status == 404


async def test_concurrent_adds_by_one_user_all_count(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx)
    buyer = await shopper(ctx)
    responses = await asyncio.gather(
        *(
            client.post("cart:items", json={"product": "brass-lamp"}, token=buyer.token)
            for _ in range(12)
        )
    )
    assert [response.status for response in responses] == [201] * 12
    [line] = (await client.get("cart:detail", token=buyer.token)).json()["items"]
    assert line["quantity"] == 12
