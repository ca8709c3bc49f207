"""The AsyncAPI document at /asyncapi.json, checked against frames the server really sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft7Validator, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT7

from app.server import VERSION
from schemas.events import (
    InventorySnapshot,
    Message,
    OrderStatusChanged,
    Resync,
    StockChanged,
    StockLevelOut,
)
from tests.client import ApiClient

DOCUMENT_URI = "urn:shop:asyncapi"
AT = datetime(2026, 3, 1, 8, 15, 30, tzinfo=UTC)
FRAMES_BY_CHANNEL: dict[str, list[Message]] = {
    "orders": [
        OrderStatusChanged(event_id=1, order_id=1, status="pending_payment", at=AT, user_id=1),
        OrderStatusChanged(event_id=77, order_id=9, status="refunded", at=AT, user_id=2),
        Resync(),
    ],
    "inventory": [
        InventorySnapshot(products=[]),
        InventorySnapshot(
            products=[
                StockLevelOut(product="brass-desk-lamp", stock=3, in_stock=True),
                StockLevelOut(product="oak-shelf", stock=0, in_stock=False),
            ]
        ),
        StockChanged(product="oak-shelf", stock=0, in_stock=False, at=AT),
    ],
}
CASES = [
    pytest.param(channel, event, id=f"{channel}-{event.frame}")
    for channel, events in FRAMES_BY_CHANNEL.items()
    for event in events
]


async def served_document(client: ApiClient) -> dict[str, Any]:
    response = await client.get("ops:asyncapi")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


def payload_validator(document: dict[str, Any], message: str) -> Draft7Validator:
    """A validator for one message's payload, resolving its references in `document`
    (the AsyncAPI Schema Object is a superset of JSON Schema draft 07)."""
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, DRAFT7.create_resource(document)
    )
    return Draft7Validator(
        {"$ref": f"{DOCUMENT_URI}#/components/messages/{message}/payload"},
        registry=registry,
        format_checker=Draft7Validator.FORMAT_CHECKER,
    )


def channel_messages(document: dict[str, Any], channel: str) -> list[str]:
    """The names (components keys) of the messages a channel carries."""
    refs = document["channels"][channel]["messages"].values()
    return [ref["$ref"].rsplit("/", 1)[-1] for ref in refs]


async def test_asyncapi_document_is_served_with_both_channels(client: ApiClient) -> None:
    document = await served_document(client)
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "Shop API"
    assert document["info"]["version"] == VERSION
    assert document["channels"]["orders"]["address"] == "/ws/orders"
    assert document["channels"]["inventory"]["address"] == "/ws/inventory"


async def test_channels_describe_their_query_parameters(client: ApiClient) -> None:
    document = await served_document(client)
    orders = document["channels"]["orders"]["bindings"]["ws"]["query"]
    inventory = document["channels"]["inventory"]["bindings"]["ws"]["query"]
    assert orders["type"] == "object" and inventory["type"] == "object"
    assert set(orders["properties"]) == {"token", "order", "since"}
    assert orders["required"] == ["token"]
    assert orders["properties"]["since"]["type"] == "integer"
    assert set(inventory["properties"]) == {"products"}
    assert inventory["required"] == ["products"]
    assert inventory["properties"]["products"]["maxItems"] == 100


async def test_channel_descriptions_list_their_close_codes(client: ApiClient) -> None:
    document = await served_document(client)
    orders = document["channels"]["orders"]["description"]
    inventory = document["channels"]["inventory"]["description"]
    for code in ("4400", "4401", "4403", "1013", "1001"):
        assert f"`{code}`" in orders
    for code in ("4400", "1013", "1001"):
        assert f"`{code}`" in inventory
    assert "`4401`" not in inventory


async def test_the_server_sends_every_message_of_each_channel(client: ApiClient) -> None:
    document = await served_document(client)
    by_channel = {
        operation["channel"]["$ref"]: operation for operation in document["operations"].values()
    }
    assert set(by_channel) == {"#/channels/orders", "#/channels/inventory"}
    for channel in ("orders", "inventory"):
        operation = by_channel[f"#/channels/{channel}"]
        assert operation["action"] == "send"
        assert [ref["$ref"].rsplit("/", 1)[-1] for ref in operation["messages"]] == (
            channel_messages(document, channel)
        )


@pytest.mark.parametrize(("channel", "event"), CASES)
async def test_a_real_frame_matches_exactly_one_message_of_its_channel(
    client: ApiClient, channel: str, event: Message
) -> None:
    document = await served_document(client)
    frame = json.loads(event.frame)
    matching = [
        name
        for name in channel_messages(document, channel)
        if payload_validator(document, name).is_valid(frame)
    ]
    assert matching == [type(event).__name__]


async def test_a_frame_carrying_its_routing_field_is_rejected(client: ApiClient) -> None:
    document = await served_document(client)
    event = OrderStatusChanged(event_id=5, order_id=2, status="paid", at=AT, user_id=3)
    leaked = json.loads(event.model_dump_json())
    assert leaked["user_id"] == 3
    with pytest.raises(ValidationError, match="user_id"):
        payload_validator(document, "OrderStatusChanged").validate(leaked)


async def test_every_message_example_is_a_valid_payload(client: ApiClient) -> None:
    document = await served_document(client)
    for name, message in document["components"]["messages"].items():
        assert message["examples"], name
        for example in message["examples"]:
            payload_validator(document, name).validate(example["payload"])
