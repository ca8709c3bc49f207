"""The OpenAPI document says exactly what the server accepts: the nullable flag of every
PATCH field, the money ceiling, the country codes, the headers, tags and errors."""

from __future__ import annotations

import itertools
import re
import string
import sys
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError

from core.context import AppContext
from schemas.common import MAX_CENTS, cents_to_str, parse_money
from schemas.orders import COUNTRY_CODES
from schemas.reviews import ReviewIn
from tests.catalog_factories import create_category, create_discount, create_product
from tests.client import ApiClient
from tests.factories import log_in
from tests.order_factories import fill_cart, ordered

TAGS = {"accounts", "users", "catalog", "discounts", "reviews", "cart", "orders", "payments", "ops"}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
CEILING = cents_to_str(MAX_CENTS)
ONE_CENT_OVER = cents_to_str(MAX_CENTS + 1)


async def served_document(client: ApiClient) -> dict[str, Any]:
    """/openapi.json as clients get it, checked against the OpenAPI 3.0 schema."""
    document: dict[str, Any] = (await client.get("ops:openapi")).json()
    validate(document)
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in document["paths"].items()
        for method in HTTP_METHODS
        if method in item
    ]


def body_schema(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema: dict[str, Any] = document["components"]["schemas"][reference.rpartition("/")[2]]
    return schema


async def test_every_operation_has_one_resource_tag_and_every_tag_is_described(
    client: ApiClient,
) -> None:
    document = await served_document(client)
    used = set()
    for path, method, operation in operations(document):
        assert len(operation["tags"]) == 1, (method, path)
        used.add(operation["tags"][0])
    assert used == TAGS
    described = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert set(described) == TAGS and all(described.values())


async def test_every_error_response_has_the_error_schema(client: ApiClient) -> None:
    document = await served_document(client)
    for path, method, operation in operations(document):
        responses = operation["responses"]
        assert "401" in responses and "503" in responses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), (method, path)
        for status in [status for status in responses if status >= "400"]:
            if (path, status) == ("/health", "503"):
                continue  # the health report itself, saying what is down
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)


async def test_checkout_documents_the_optional_idempotency_key(client: ApiClient) -> None:
    document = await served_document(client)
    checkout = document["paths"]["/api/v1/orders"]["post"]
    (header,) = [p for p in checkout["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and header["required"] is False
    assert (header["schema"]["minLength"], header["schema"]["maxLength"]) == (1, 255)
    assert {"200", "201"} <= set(checkout["responses"])  # 200: the key was used before


async def test_the_webhook_requires_the_stripe_signature_header(client: ApiClient) -> None:
    document = await served_document(client)
    webhook = document["paths"]["/api/v1/payments/stripe/webhook"]["post"]
    assert [(p["name"], p["in"], p["required"]) for p in webhook["parameters"]] == [
        ("Stripe-Signature", "header", True)
    ]


async def test_ids_in_paths_are_documented_as_the_integers_the_routes_take(
    client: ApiClient,
) -> None:
    document = await served_document(client)
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                assert parameter["schema"]["type"] == "integer", (method, path)
                assert parameter["schema"]["maximum"] == 10**18 - 1


async def test_money_in_requests_carries_the_ceiling_the_server_enforces(client: ApiClient) -> None:
    document = await served_document(client)
    schemas = document["components"]["schemas"]
    money = [
        schemas["ProductIn"]["properties"]["price"],
        schemas["ProductUpdate"]["properties"]["price"],
        schemas["DiscountIn"]["properties"]["min_order_total"],
        schemas["DiscountUpdate"]["properties"]["min_order_total"],
    ]
    listing = document["paths"]["/api/v1/products"]["get"]["parameters"]
    money += [p["schema"] for p in listing if p["name"] in ("min_price", "max_price")]
    for schema in money:
        pattern = re.compile(schema["pattern"])
        assert CEILING in schema["description"]
        for accepted in ("0.00", "19.99", "19.9", "19", "0019.99", CEILING, "21474836.4"):
            assert pattern.search(accepted), (accepted, schema)
            parse_money(accepted)
        for refused in (ONE_CENT_OVER, "21474836.5", "21474837", "99999999.99", "1.999", "-1"):
            assert not pattern.search(refused), (refused, schema)


async def test_a_price_at_the_ceiling_is_taken_and_one_cent_more_is_refused(
    client: ApiClient, ctx: AppContext
) -> None:
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    at_ceiling = {"name": "Gold Lamp", "price": CEILING}
    created = await client.post("catalog:products", json=at_ceiling, token=staff.token)
    assert created.status == 201 and created.json()["price"] == CEILING
    over = {"name": "Platinum Lamp", "price": ONE_CENT_OVER}
    refused = await client.post("catalog:products", json=over, token=staff.token)
    assert refused.status == 400 and set(refused.json()["error"]["fields"]) == {"price"}


async def test_the_country_pattern_matches_exactly_the_codes_the_server_takes(
    client: ApiClient,
) -> None:
    document = await served_document(client)
    country = document["components"]["schemas"]["ShippingAddress"]["properties"]["country"]
    pattern = re.compile(country["pattern"])
    for pair in map("".join, itertools.product(string.ascii_letters, repeat=2)):
        assert bool(pattern.search(pair)) == (pair.upper() in COUNTRY_CODES), pair


@pytest.mark.slow
async def test_a_stripped_string_must_hold_a_character_that_stripping_keeps(
    client: ApiClient,
) -> None:
    document = await served_document(client)
    title = document["components"]["schemas"]["ReviewIn"]["properties"]["title"]
    documented = re.compile(title["pattern"])
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates are no text: JSON decoding refuses them first
        character = chr(code)
        try:
            ReviewIn.model_validate({"rating": 5, "title": character, "body": ""})
            accepted = True
        except ValidationError:
            accepted = False
        assert bool(documented.search(character)) == accepted, hex(code)
    assert documented.search("a\x00b") is None  # NUL bytes are refused


async def patch_targets(client: ApiClient, ctx: AppContext) -> dict[str, tuple[str, str]]:
    """Each PATCH path of the document -> (a URL of a real resource, a token allowed to
    change it)."""
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    shopper = await log_in(client, ctx, "shopper@example.com")
    lighting = await create_category(ctx, "Lighting")
    await create_product(ctx, "Brass Desk Lamp", category=lighting)
    discount = await create_discount(ctx, "SAVE10", category=lighting)
    order = await ordered(client, shopper.token, {"brass-desk-lamp": 1})
    await fill_cart(client, shopper.token, {"brass-desk-lamp": 1})
    review = await client.post(
        "catalog:product-reviews",
        "brass-desk-lamp",
        json={"rating": 4, "title": "Nice"},
        token=shopper.token,
    )
    return {
        "/api/v1/categories/{slug}": ("/api/v1/categories/lighting", staff.token),
        "/api/v1/products/{slug}": ("/api/v1/products/brass-desk-lamp", staff.token),
        "/api/v1/discounts/{discount_id}": (f"/api/v1/discounts/{discount.id}", staff.token),
        "/api/v1/reviews/{review_id}": (f"/api/v1/reviews/{review.json()['id']}", shopper.token),
        "/api/v1/cart/items/{slug}": ("/api/v1/cart/items/brass-desk-lamp", shopper.token),
        "/api/v1/orders/{order_id}/status": (
            f"/api/v1/orders/{order['id']}/status",
            staff.token,
        ),
        "/api/v1/users/{user_id}": (f"/api/v1/users/{shopper.user.id}", staff.token),
    }


async def test_every_patch_field_is_nullable_exactly_when_the_server_takes_null(
    client: ApiClient, ctx: AppContext
) -> None:
    document = await served_document(client)
    targets = await patch_targets(client, ctx)
    patches = [(path, op) for path, method, op in operations(document) if method == "patch"]
    assert {path for path, _op in patches} == set(targets)
    for path, operation in patches:
        url, token = targets[path]
        for field, schema in body_schema(document, operation)["properties"].items():
            response = await client.patch(url, json={field: None}, token=token)
            refused = response.json().get("error", {}).get("fields", {}) if response.body else {}
            if schema.get("nullable"):
                assert field not in refused, (path, field, response.body)
                assert response.status in (200, 409), (path, field, response.body)
            else:
                assert response.status == 400 and field in refused, (path, field)


async def test_every_free_text_query_parameter_says_it_refuses_a_nul_byte(
    client: ApiClient,
) -> None:
    """The server refuses a NUL byte in any query argument (400), so the document must
    not promise it; a fuzzer holds it to what it says."""
    document = await served_document(client)
    patterns = {
        (path, parameter["name"]): parameter["schema"].get("pattern")
        for path, _method, operation in operations(document)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
        and parameter["schema"].get("type") == "string"
        and "enum" not in parameter["schema"]
    }
    assert ("/api/v1/products", "q") in patterns and ("/api/v1/users", "search") in patterns
    accepting_nul = [
        key for key, pattern in patterns.items() if not pattern or re.search(pattern, "a\x00b")
    ]
    assert accepting_nul == []
    refused = await client.get("catalog:products", query="q=lamp%00")
    assert (refused.status, list(refused.json()["error"]["fields"])) == (400, ["q"])
