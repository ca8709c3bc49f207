"""Realtime events: the channel names, the typed events, which are the wire models of
the websocket messages, and their one JSON encoding between processes.

Services hand events to the after-commit publisher (core/after_commit.py) once their
transaction has committed; the hub (core/hub.py) carries them to every process, through
its broker encoded by `encode_event` and decoded by `decode_event` (the composition root,
app/context.py, gives it both), and the websocket handlers send each listener the
event's `websocket_frame`. An event type names the cache groups it makes stale
(`stale_cache_groups`), so that the publisher needs no event type of its own.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.after_commit import CATALOG_CACHE_GROUP
from core.websocket import frame_text
from schemas.common import UtcDatetime
from schemas.orders import OrderStatus

ORDERS_CHANNEL = "orders"
INVENTORY_CHANNEL = "inventory"
# Internal: never sent to a client, it tells every process's sockets to follow an account.
ACCOUNTS_CHANNEL = "accounts"
CHANNELS = (ORDERS_CHANNEL, INVENTORY_CHANNEL, ACCOUNTS_CHANNEL)


class Message(BaseModel):
    """A server-to-client websocket message. Fields named in `routing_fields` decide who
    receives an event and are never sent."""

    model_config = ConfigDict(frozen=True)
    routing_fields: ClassVar[frozenset[str]] = frozenset()
    # Cached responses that show what the event announces, made stale when it is
    # published (core/after_commit.py).
    stale_cache_groups: ClassVar[tuple[str, ...]] = ()

    @cached_property
    def frame(self) -> str:
        """The text clients receive, encoded once however many sockets get it."""
        return self.model_dump_json(exclude=set(self.routing_fields))

    @cached_property
    def websocket_frame(self) -> bytes:
        """`frame` as a whole websocket text frame (core/websocket.py), built once
        however many sockets get it."""
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
    stale_cache_groups: ClassVar[tuple[str, ...]] = (CATALOG_CACHE_GROUP,)  # stock shows there

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


class AccountClosed(Message):
    """A user was deactivated (committed): every process closes the sockets they opened
    with a token. Internal, never sent to a client."""

    channel: ClassVar[str] = ACCOUNTS_CHANNEL
    routing_fields: ClassVar[frozenset[str]] = frozenset({"user_id"})

    type: Literal["account.closed"] = "account.closed"
    user_id: int


Event = OrderStatusChanged | StockChanged | AccountClosed
_EVENT: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="type")])


def encode_event(event: Event) -> bytes:
    """The event with its routing fields, as it travels between processes."""
    return event.model_dump_json().encode()


def decode_event(data: bytes | str) -> Event:
    """The inverse of `encode_event`; pydantic's ValidationError for anything else."""
    return _EVENT.validate_json(data)
