"""CORS for ALLOWED_ORIGINS only: preflights answered, responses readable, no credentials."""

from __future__ import annotations

import pytest

from tests.client import ApiClient

SHOP = "https://shop.example"
pytestmark = pytest.mark.settings(allowed_origins=f"{SHOP}, https://admin.shop.example")


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_a_preflight_from_an_allowed_origin_is_answered(client: ApiClient) -> None:
    response = await client.request("OPTIONS", "orders:list", headers=preflight(SHOP))
    assert response.status == 204
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == SHOP
    assert headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST"
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert "Idempotency-Key" in headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in headers
    assert headers["Vary"] == "Origin"


async def test_responses_to_an_allowed_origin_are_readable(client: ApiClient) -> None:
    response = await client.get("catalog:products", headers={"Origin": SHOP})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    error = await client.get("orders:list", headers={"Origin": SHOP})
    assert error.status == 401
    assert error.headers["Access-Control-Allow-Origin"] == SHOP  # errors are readable too


async def test_other_origins_get_no_cors_and_their_preflight_is_405(client: ApiClient) -> None:
    response = await client.get("catalog:products", headers={"Origin": "https://evil.example"})
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    refused = await client.request(
        "OPTIONS", "orders:list", headers=preflight("https://evil.example")
    )
    assert refused.status == 405
    assert "Access-Control-Allow-Origin" not in refused.headers


@pytest.mark.settings(allowed_origins="")
async def test_without_allowed_origins_there_is_no_cors(client: ApiClient) -> None:
    refused = await client.request("OPTIONS", "orders:list", headers=preflight(SHOP))
    assert refused.status == 405
    response = await client.get("catalog:products", headers={"Origin": SHOP})
    assert "Access-Control-Allow-Origin" not in response.headers
