"""Identities compare exactly on every database: emails and discount codes fold case
only, slugs, Idempotency-Keys and the rest fold nothing (docs/api.md)."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable

import pytest

from core.context import AppContext
from core.ratelimit import RateLimiter
from models.accounts import User
from models.catalog import Discount
from models.orders import Order
from tests.catalog_factories import create_category, create_product
from tests.client import ApiClient
from tests.factories import (
    DEFAULT_PASSWORD,
    count_rows,
    create_user,
    latest_mail_to,
    log_in,
    token_from_mail,
)
from tests.order_factories import (
    add_discount,
    fill_cart,
    place_order,
    shopper_with_cart,
    stock_of,
)

EMAIL = "ada@example.com"
OTHER_PASSWORD = "purple-walrus-umbrella-42"
# Each differs from EMAIL in one letter that a case- and accent-insensitive collation
# would fold onto it.
LOOK_ALIKES = ("äda@example.com", "ａda@example.com", "àda@example.com")


async def sign_up(client: ApiClient, ctx: AppContext, email: str, password: str) -> None:
    """Register through the API and confirm with the code from the queued mail."""
    registered = await client.post(
        "auth:register", json={"email": email, "password": password, "full_name": "Ada"}
    )
    assert registered.status == 201, registered.body
    stored = registered.json()["email"]
    token = token_from_mail((await latest_mail_to(ctx, stored)).body)
    verified = await client.post("auth:verify-email", json={"token": token})
    assert verified.status == 200, verified.body


async def login_status(client: ApiClient, email: str, password: str) -> int:
    response = await client.post("auth:login", json={"email": email, "password": password})
    return response.status


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
async def test_an_email_with_another_letter_is_another_account(
    client: ApiClient, ctx: AppContext, look_alike: str
) -> None:
    await create_user(ctx, EMAIL)
    await sign_up(client, ctx, look_alike, OTHER_PASSWORD)

    assert await login_status(client, EMAIL, DEFAULT_PASSWORD) == 200
    assert await login_status(client, look_alike, OTHER_PASSWORD) == 200
    # Each password opens its own account only.
    assert await login_status(client, EMAIL, OTHER_PASSWORD) == 401
    assert await login_status(client, look_alike, DEFAULT_PASSWORD) == 401


@pytest.mark.parametrize("look_alike", [*LOOK_ALIKES, "ÄDA@example.com"])
async def test_a_look_alike_spelling_does_not_sign_into_the_account(
    client: ApiClient, ctx: AppContext, look_alike: str
) -> None:
    await create_user(ctx, EMAIL)
    response = await client.post(
        "auth:login", json={"email": look_alike, "password": DEFAULT_PASSWORD}
    )
    assert (response.status, response.error_code) == (401, "invalid_credentials")


async def test_case_variants_of_an_email_are_one_account(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_user(ctx, EMAIL)
    taken = await client.post(
        "auth:register", json={"email": "ADA@Example.com", "password": OTHER_PASSWORD}
    )
    assert (taken.status, taken.error_code) == (409, "conflict")
    assert await count_rows(ctx, User) == 1
    assert await login_status(client, "ADA@EXAMPLE.COM", DEFAULT_PASSWORD) == 200


async def test_a_composed_and_a_decomposed_letter_are_one_email(
    client: ApiClient, ctx: AppContext
) -> None:
    composed = "äda@example.com"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    await create_user(ctx, composed)
    assert await login_status(client, decomposed, DEFAULT_PASSWORD) == 200
    taken = await client.post(
        "auth:register", json={"email": decomposed, "password": OTHER_PASSWORD}
    )
    assert (taken.status, taken.error_code) == (409, "conflict")


def count_per_account_only(monkeypatch: pytest.MonkeyPatch, limiter: RateLimiter) -> None:
    """As if every attempt came from another address: only the per-account login limit
    counts, so what is asserted is how that one is keyed."""
    for name in ("hit", "check"):
        apply: Callable[[str, str, str], Awaitable[None]] = getattr(limiter, name)

        async def per_account(
            rate: str,
            scope: str,
            identity: str,
            apply: Callable[[str, str, str], Awaitable[None]] = apply,
        ) -> None:
            if scope != "login-ip":
                await apply(rate, scope, identity)

        monkeypatch.setattr(limiter, name, per_account)


@pytest.mark.settings(login_rate_limit="3/minute")
async def test_look_alike_spellings_neither_reach_nor_reset_the_accounts_login_limit(
    client: ApiClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    count_per_account_only(monkeypatch, ctx.limiter)
    await create_user(ctx, EMAIL)
    for _ in range(3):
        assert await login_status(client, EMAIL, "wrong-password-here") == 401
    assert await login_status(client, EMAIL, DEFAULT_PASSWORD) == 429
    # Other spellings are other (unknown) accounts: the right password opens nothing.
    for spelling in (*LOOK_ALIKES, "ÄDA@example.com", "ada@exämple.com"):
        assert await login_status(client, spelling, DEFAULT_PASSWORD) == 401
    # And the real account is still limited.
    assert await login_status(client, EMAIL.upper(), DEFAULT_PASSWORD) == 429


async def test_idempotency_keys_differing_in_case_or_accent_are_different_orders(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer = await shopper_with_cart(client, ctx, 1, stock=5)
    ids: list[int] = []
    for key in ("Key-1", "key-1", "kéy-1"):
        response = await place_order(client, buyer.token, headers={"Idempotency-Key": key})
        assert response.status == 201, (key, response.body)
        ids.append(response.json()["id"])
        await fill_cart(client, buyer.token, {"brass-lamp": 1})
    assert len(set(ids)) == 3
    again = await place_order(client, buyer.token, headers={"Idempotency-Key": "kéy-1"})
    assert (again.status, again.json()["id"]) == (200, ids[2])
    assert await stock_of(ctx, "brass-lamp") == 2


async def test_slugs_match_exactly_and_admit_no_accents(client: ApiClient, ctx: AppContext) -> None:
    await create_category(ctx, "Lighting")
    await create_product(ctx, "Brass Desk Lamp")
    await create_product(ctx, "Cafe")
    token = (await log_in(client, ctx, "staff@example.com", staff=True)).token
    accented = await client.post(
        "catalog:products", json={"name": "Café", "slug": "café", "price": "1.00"}, token=token
    )
    assert accented.status == 400
    assert list(accented.json()["error"]["fields"]) == ["slug"]
    # Made from the name, the slug is plain ASCII: `Café` is spelt like `Cafe`.
    made = await client.post(
        "catalog:products", json={"name": "Café", "price": "1.00"}, token=token
    )
    assert made.status == 201, made.body
    assert made.json()["slug"] == "cafe-2"
    assert (await client.get("catalog:product", "brass-desk-lamp")).status == 200
    assert (await client.get("catalog:product", "Brass-Desk-Lamp")).status == 404
    assert (await client.get("catalog:category", "LIGHTING")).status == 404


async def test_discount_codes_fold_case_and_nothing_else(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_discount(ctx, "SAVE10")
    token = (await log_in(client, ctx, "staff@example.com", staff=True)).token
    lower = await client.post(
        "catalog:discounts", json={"code": "save10", "kind": "percent", "value": 5}, token=token
    )
    assert (lower.status, lower.error_code) == (409, "conflict")
    # An accented code is not a code at all (letters A-Z, digits, - and _).
    accented = await client.post(
        "catalog:discounts", json={"code": "SAVÉ10", "kind": "percent", "value": 5}, token=token
    )
    assert accented.status == 400
    assert list(accented.json()["error"]["fields"]) == ["code"]
    assert await count_rows(ctx, Discount) == 1

    # At checkout an accented spelling is an unknown code: nothing is ordered or used.
    buyer = await shopper_with_cart(client, ctx, 1, stock=5)
    refused = await place_order(client, buyer.token, discount_code="SAVÉ10")
    assert refused.status == 400
    assert list(refused.json()["error"]["fields"]) == ["discount_code"]
    assert await count_rows(ctx, Order) == 0
    assert await stock_of(ctx, "brass-lamp") == 5
    applied = await place_order(client, buyer.token, discount_code="save10")
    assert applied.status == 201
    assert applied.json()["discount_code"] == "SAVE10"
