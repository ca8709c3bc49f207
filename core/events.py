"""Realtime events: the channel names, the typed events and their one JSON encoding.

Services hand events to the after-commit publisher (core/after_commit.py) once their
transaction has committed; the hub (core/hub.py) carries them to every process, and the
websocket handlers send each listener the event's `frame`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.websocket import frame_text
from schemas.common import UtcDatetime
from schemas.orders import OrderStatus

ORDERS_CHANNEL = "orders"
INVENTORY_CHANNEL = "inventory"
CHANNELS = (ORDERS_CHANNEL, INVENTORY_CHANNEL)


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
        """`frame` as a whole websocket text frame, built once for every socket."""
        return frame_text(self.frame.encode())


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
