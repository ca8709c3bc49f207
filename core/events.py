"""Realtime events: the channel names, the typed events and their one JSON encoding.

Services hand events to the after-commit publisher (core/after_commit.py) once their
transaction has committed; the hub (core/hub.py) carries them to every process, and the
websocket handlers send each listener the event's `frame`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.common import UtcDatetime
from schemas.orders import OrderStatus

ORDERS_CHANNEL = "orders"
INVENTORY_CHANNEL = "inventory"
CHANNELS = (ORDERS_CHANNEL, INVENTORY_CHANNEL)
_FIN_TEXT = 0x81  # a final frame (FIN bit) carrying text (opcode 1)

# Websocket close codes (docs/websockets.md, Close codes).
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013  # too slow a reader, or no turn to start within a wait
BAD_PARAMETERS = 4400
NOT_AUTHENTICATED = 4401
FORBIDDEN = 4403


class Message(BaseModel):
    """A server-to-client websocket message. Fields named in `routing_fields` decide who
    receives an event and are never sent."""

    model_config = ConfigDict(frozen=True)
    routing_fields: ClassVar[frozenset[str]] = frozenset()

    @cached_property
    def frame(self) -> str:
        """The text clients receive, encoded once however many sockets get it."""
        return self.model_dump_json(exclude=set(self.routing_fields))

    @cached_property
    def websocket_frame(self) -> bytes:
        """`frame` as a whole websocket text frame (RFC 6455 §5.2). A server's frames are
        not masked, so these same bytes go to every socket (none uses compression)."""
        payload = self.frame.encode()
        size = len(payload)
        if size < 126:
            header = bytes((_FIN_TEXT, size))
        elif size < 1 << 16:
            header = bytes((_FIN_TEXT, 126)) + size.to_bytes(2, "big")
        else:
            header = bytes((_FIN_TEXT, 127)) + size.to_bytes(8, "big")
        return header + payload


class OrderStatusChanged(Message):
    """An order moved to `status`; `event_id` is its row in the order's timeline."""

    channel: ClassVar[str] = ORDERS_CHANNEL
    routing_fields: ClassVar[frozenset[str]] = frozenset({"user_id"})

    type: Literal["order.status"] = "order.status"
    event_id: int
    order_id: int
    status: OrderStatus
    at: UtcDatetime
    user_id: int


class StockChanged(Message):
    """A product's stock after a committed change (order, cancellation, release, expiry,
    staff edit)."""

    channel: ClassVar[str] = INVENTORY_CHANNEL

    type: Literal["inventory.changed"] = "inventory.changed"
    product: str
    stock: int
    in_stock: bool
    at: UtcDatetime


class StockLevelOut(BaseModel):
    product: str
    stock: int
    in_stock: bool


class InventorySnapshot(Message):
    """The first message on /ws/inventory: the stock of every product asked for."""

    type: Literal["inventory.snapshot"] = "inventory.snapshot"
    products: list[StockLevelOut]


class Resync(Message):
    """More events were missed than are replayed: refetch state over REST."""

    type: Literal["resync"] = "resync"


Event = OrderStatusChanged | StockChanged
_EVENT: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="type")])


def encode_event(event: Event) -> bytes:
    """The event with its routing fields, as it travels between processes."""
    return event.model_dump_json().encode()


def decode_event(data: bytes | str) -> Event:
    """The inverse of `encode_event`; pydantic's ValidationError for anything else."""
    return _EVENT.validate_json(data)
