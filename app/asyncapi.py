"""The AsyncAPI 3.0.0 document of the websocket channels, built once at start.

The document describes the application, the server: it `send`s every message, and a
client `receive`s them. Channel addresses come from the route table; each message's
payload is its event class's serialization schema, shaped like `Message.frame`: the
routing fields left out, every other field always present and nothing more. The
query parameters are the channels' query models (`bindings.ws.query`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from core.websocket import (
    BAD_PARAMETERS,
    FORBIDDEN,
    GOING_AWAY,
    INTERNAL_ERROR,
    NOT_AUTHENTICATED,
    TRY_AGAIN_LATER,
)
from handlers.realtime import EventSocketHandler
from schemas.events import (
    INVENTORY_CHANNEL,
    ORDERS_CHANNEL,
    InventorySnapshot,
    Message,
    OrderStatusChanged,
    Resync,
    StockChanged,
    StockLevelOut,
)
from schemas.realtime import InventoryFeedQuery, OrderFeedQuery

ASYNCAPI_VERSION = "3.0.0"
REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY_SCHEME = "accessToken"
# The query parameter that carries the access token (browsers cannot set headers).
# A parameter name, not a secret.
TOKEN_PARAMETER = "token"  # nosec B105
_WORD = re.compile(r"[A-Z][a-z]*")
_EXAMPLE_TIME = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
# One example per message, encoded by the event classes themselves.
EXAMPLES: tuple[Message, ...] = (
    OrderStatusChanged(event_id=1042, order_id=318, status="paid", at=_EXAMPLE_TIME, user_id=7),
    Resync(),
    InventorySnapshot(
        products=[
            StockLevelOut(product="brass-desk-lamp", stock=12, in_stock=True),
            StockLevelOut(product="linen-lampshade", stock=0, in_stock=False),
        ]
    ),
    StockChanged(product="brass-desk-lamp", stock=11, in_stock=True, at=_EXAMPLE_TIME),
)
_BAD_PARAMETERS_CLOSE = (BAD_PARAMETERS, "bad parameters; the close reason names them")
_SERVER_CLOSES = (
    (
        TRY_AGAIN_LATER,
        "try again later: more than `WS_QUEUE_LIMIT` messages waited for this socket, or "
        "the server was too busy to start it (a reconnect storm): reconnect after a pause",
    ),
    (GOING_AWAY, "the server is going away (restart or deploy): reconnect"),
    (INTERNAL_ERROR, "unexpected server error: reconnect later"),
)
_CONNECTION_RULES = (
    "A handshake whose `Origin` is neither same-origin nor listed in `ALLOWED_ORIGINS` "
    "is refused with HTTP 403. Clients send nothing but pings and pongs; the server pings "
    "every `WS_PING_INTERVAL` (20 s) and drops a peer silent for `WS_PING_TIMEOUT` (10 s) more."
)


@dataclass(frozen=True)
class ChannelDoc:
    """What the document says of one channel; its address comes from the route table."""

    title: str
    description: str
    operation_id: str
    query: type[BaseModel]
    messages: tuple[type[Message], ...]
    close_codes: tuple[tuple[int, str], ...]
    # A token is required: a missing one closes the socket with 4401, not 4400, so the
    # query model leaves it optional and the document says so.
    needs_token: bool = False


CHANNELS = {
    ORDERS_CHANNEL: ChannelDoc(
        title="Order status",
        description=(
            "Status changes of the signed-in user's orders (staff: every order), or of "
            "order `order` alone. With `since`, the stored events after that event id are "
            "replayed first, in id order, then live events follow with no gap and no "
            "duplicate. Read an order over REST, then connect with "
            "`since=<its last_event_id>`: no change is missed; after a drop, reconnect "
            "with the highest `event_id` received. When more than `WS_REPLAY_LIMIT` events "
            "would be replayed, one `resync` comes instead: refetch over REST."
        ),
        operation_id="sendOrderStatus",
        query=OrderFeedQuery,
        messages=(OrderStatusChanged, Resync),
        close_codes=(
            _BAD_PARAMETERS_CLOSE,
            (
                NOT_AUTHENTICATED,
                "missing, bad or expired token, also when the token expires during the "
                "connection: reconnect with a fresh token and `since`",
            ),
            (FORBIDDEN, "`order` is not one of yours"),
            *_SERVER_CLOSES,
        ),
        needs_token=True,
    ),
    INVENTORY_CHANNEL: ChannelDoc(
        title="Stock levels",
        description=(
            "Public. First an `inventory.snapshot` of every product asked for, then an "
            "`inventory.changed` whenever one's stock changes (orders, cancellations, "
            "releases, expiries, staff edits)."
        ),
        operation_id="sendStockLevels",
        query=InventoryFeedQuery,
        messages=(InventorySnapshot, StockChanged),
        close_codes=(_BAD_PARAMETERS_CLOSE, *_SERVER_CLOSES),
    ),
}


def build_asyncapi(
    routes: list[tuple[str, type, str]], *, title: str, version: str
) -> dict[str, Any]:
    """The document of the channels in CHANNELS, each at the address of its websocket
    route among `routes` (pattern, handler, name); KeyError for a channel with no route."""
    addresses = {
        handler.channel: pattern
        for pattern, handler, _name in routes
        if issubclass(handler, EventSocketHandler)
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, doc in CHANNELS.items():
        channels[name] = _channel(addresses[name], doc)
        operations[doc.operation_id] = _operation(name, doc)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Websocket channels that push order status and stock changes as JSON text "
                "frames, one message each. The REST API is described at `/openapi.json`."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "shop": {
                "host": "{host}",
                "protocol": "ws",
                "description": "The service that serves this document; `wss` behind HTTPS.",
                "variables": {
                    "host": {"default": "127.0.0.1:8888", "description": "Host and port."}
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {cls.__name__: _message(cls) for cls in _all_messages()},
            "schemas": _payload_schemas(),
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "httpApiKey",
                    "name": TOKEN_PARAMETER,
                    "in": "query",
                    "description": (
                        "An access JWT from `POST /api/v1/auth/login`, in the query string: "
                        "browsers cannot set headers on a websocket handshake."
                    ),
                }
            },
        },
    }


def _all_messages() -> list[type[Message]]:
    return [cls for doc in CHANNELS.values() for cls in doc.messages]


def _channel(address: str, doc: ChannelDoc) -> dict[str, Any]:
    closes = "\n".join(f"- `{code}` {meaning}" for code, meaning in doc.close_codes)
    return {
        "address": address,
        "title": doc.title,
        "description": f"{doc.description}\n\nClose codes:\n{closes}\n\n{_CONNECTION_RULES}",
        "messages": {
            cls.__name__: {"$ref": f"#/components/messages/{cls.__name__}"} for cls in doc.messages
        },
        "bindings": {
            "ws": {
                "method": "GET",
                "query": _query_schema(doc.query, needs_token=doc.needs_token),
                "bindingVersion": "0.1.0",
            }
        },
    }


def _operation(channel: str, doc: ChannelDoc) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel}"},
        "title": doc.title,
        "messages": [
            {"$ref": f"#/channels/{channel}/messages/{cls.__name__}"} for cls in doc.messages
        ],
    }
    if doc.needs_token:
        operation["security"] = [{"$ref": f"#/components/securitySchemes/{SECURITY_SCHEME}"}]
    return operation


def _message(cls: type[Message]) -> dict[str, Any]:
    example = next(example for example in EXAMPLES if type(example) is cls)
    words = _WORD.findall(cls.__name__)
    return {
        "name": cls.model_fields["type"].default,
        "title": " ".join([words[0], *(word.lower() for word in words[1:])]),
        "summary": " ".join((cls.__doc__ or "").split()),
        "contentType": "application/json",
        "payload": {"$ref": REF_TEMPLATE.format(model=cls.__name__)},
        "examples": [{"name": cls.__name__, "payload": json.loads(example.frame)}],
    }


def _payload_schemas() -> dict[str, Any]:
    """Every message's schema and what it references, keyed by class name."""
    _refs, definitions = models_json_schema(
        [(cls, "serialization") for cls in _all_messages()], ref_template=REF_TEMPLATE
    )
    routing = {cls.__name__: cls.routing_fields for cls in _all_messages()}
    return {
        name: _frame_schema(schema, routing.get(name, frozenset()))
        for name, schema in sorted(definitions["$defs"].items())
    }


def _frame_schema(schema: dict[str, Any], routing_fields: frozenset[str]) -> dict[str, Any]:
    """A frame carries every field but the routing ones (defaults too), and nothing else."""
    if schema.get("type") != "object":
        return schema
    properties = {
        name: _lower_example(prop)
        for name, prop in schema["properties"].items()
        if name not in routing_fields
    }
    return {
        **schema,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _lower_example(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI's `example` (shared timestamp type) -> JSON Schema's `examples`."""
    if "example" not in schema:
        return schema
    rest = {key: value for key, value in schema.items() if key != "example"}
    return {**rest, "examples": [schema["example"]]}


def _query_schema(model: type[BaseModel], *, needs_token: bool) -> dict[str, Any]:
    """The query model as one object schema; an optional parameter is left out, never null."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    schema["properties"] = {
        name: _without_null(prop) for name, prop in schema["properties"].items()
    }
    if needs_token:
        schema["required"] = [TOKEN_PARAMETER, *schema.get("required", [])]
    return schema


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None = None` -> X."""
    variants = schema.get("anyOf", [])
    if {"type": "null"} not in variants:
        return schema
    (present,) = [variant for variant in variants if variant != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    return {**rest, **present}
