"""Order rows on the direct path: the order and its items as checkout writes and finds
them, the status moves the status machine makes, and the timeline's rows.

An order read or written here is a row object, not an ORM one (building ORM objects was
a measured share of checkout's CPU). Its type is made from the model: every column of
`orders` (and of `order_items`) is a field, so a column added to the model is written,
read back and carried without a change here; a Python-side scalar default of the model
fills a column the caller leaves out. The answer (schemas/orders.py, `OrderOut`) reads
the fields it shows through the `OrderFields` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, make_dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol, cast

from sqlalchemy import Table, bindparam, func, insert, select, update

from core.direct import Direct, Statement
from models.base import column_keys, table_of
from models.orders import Order, OrderEvent, OrderItem
from schemas.orders import OrderFields, OrderItemFields


class OrderRow(OrderFields, Protocol):
    """An order as written or read here (what the answer shows, and the newest event id
    its writer may set once the first event is recorded)."""

    last_event_id: int | None


_ORDERS = table_of(Order)
_ORDER_ITEMS = table_of(OrderItem)
_ORDER_EVENTS = table_of(OrderEvent)


def _scalar_defaults(table: Table) -> dict[str, Any]:
    """The Python-side scalar defaults of the table's columns, by column name."""
    return {
        column.name: column.default.arg  # type: ignore[attr-defined]
        for column in table.c
        if column.default is not None and column.default.is_scalar
    }


# Every column but the ones the database or the order gives (its id, the item's order).
ORDER_COLUMNS = tuple(key for key in column_keys(Order) if key != "id")
ITEM_COLUMNS = tuple(key for key in column_keys(OrderItem) if key not in ("id", "order_id"))
_ORDER_DEFAULTS = _scalar_defaults(_ORDERS)
_ITEM_DEFAULTS = _scalar_defaults(_ORDER_ITEMS)

_OrderRow = make_dataclass(
    "OrderRow",
    [
        *((name, Any) for name in ORDER_COLUMNS),
        ("id", int),
        ("items", list),
        ("last_event_id", int | None, field(default=None)),
    ],
    slots=True,
)
_OrderItemRow = make_dataclass("OrderItemRow", [(name, Any) for name in ITEM_COLUMNS], slots=True)


def _order_row(
    values: Mapping[str, Any], *, order_id: int, items: list[Any], last_event_id: int | None
) -> OrderRow:
    return cast(
        OrderRow, _OrderRow(**values, id=order_id, items=items, last_event_id=last_event_id)
    )


def _item_row(values: Mapping[str, Any]) -> OrderItemFields:
    return cast(OrderItemFields, _OrderItemRow(**values))


_ADD_ORDER = Statement(insert(_ORDERS))  # the columns are the names given
_ADD_ITEMS = Statement(insert(_ORDER_ITEMS))
_LAST_EVENT_ID = (
    select(func.max(_ORDER_EVENTS.c.id))
    .where(_ORDER_EVENTS.c.order_id == _ORDERS.c.id)
    .scalar_subquery()
)
_ORDER_BY_KEY = Statement(
    select(*(_ORDERS.c[name] for name in ORDER_COLUMNS), _ORDERS.c.id, _LAST_EVENT_ID).where(
        _ORDERS.c.user_id == bindparam("user_id"),
        _ORDERS.c.idempotency_key == bindparam("key"),
    )
)
_ITEMS_OF_ORDER = Statement(
    select(*(_ORDER_ITEMS.c[name] for name in ITEM_COLUMNS))
    .where(_ORDER_ITEMS.c.order_id == bindparam("order_id"))
    .order_by(_ORDER_ITEMS.c.id)
)
_STATUS_OF = Statement(
    select(_ORDERS.c.status, _ORDERS.c.user_id, _ORDERS.c.discount_id).where(
        _ORDERS.c.id == bindparam("order_id")
    )
)
_MOVE_STATUS = Statement(
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("order_id"), _ORDERS.c.status == bindparam("current"))
    .values(status=bindparam("target"), updated_at=bindparam("now"))
)
_ADD_EVENT = Statement(insert(_ORDER_EVENTS))


async def add_order(
    db: Direct,
    order: Mapping[str, Any],
    items: list[Mapping[str, Any]],
    *,
    last_event_id: int | None = None,
) -> OrderRow:
    """Insert the order (`order`: its columns by name; a reused Idempotency-Key fails
    here, on the unique index) and its items; the order as written."""
    values = {**_ORDER_DEFAULTS, **order}
    order_id = await db.insert(_ADD_ORDER, values)
    item_values = [{**_ITEM_DEFAULTS, **item} for item in items]
    await db.write_many(_ADD_ITEMS, [{"order_id": order_id, **item} for item in item_values])
    return _order_row(
        values,
        order_id=order_id,
        items=[_item_row(item) for item in item_values],
        last_event_id=last_event_id,
    )


async def order_by_key(db: Direct, *, user_id: int, key: str) -> OrderRow | None:
    """The user's order placed with Idempotency-Key `key`, as it is now."""
    rows = await db.rows(_ORDER_BY_KEY, {"user_id": user_id, "key": key})
    if not rows:
        return None
    *values, order_id, last_event_id = rows[0]
    items = await db.rows(_ITEMS_OF_ORDER, {"order_id": order_id})
    return _order_row(
        dict(zip(ORDER_COLUMNS, values, strict=True)),
        order_id=order_id,
        items=[_item_row(dict(zip(ITEM_COLUMNS, item, strict=True))) for item in items],
        last_event_id=last_event_id,
    )


class OrderStatusRow(NamedTuple):
    status: str
    user_id: int
    discount_id: int | None


async def status_of(db: Direct, *, order_id: int) -> OrderStatusRow | None:
    """The order's status, owner and discount; None for an unknown order."""
    rows = await db.rows(_STATUS_OF, {"order_id": order_id})
    return OrderStatusRow(*rows[0]) if rows else None


async def move_status(
    db: Direct, *, order_id: int, current: str, target: str, now: datetime
) -> bool:
    """Move the order from `current` to `target`; False when it is no longer in
    `current` (a concurrent caller moved it first)."""
    params = {"order_id": order_id, "current": current, "target": target, "now": now}
    return await db.write(_MOVE_STATUS, params) == 1


async def add_event(db: Direct, *, order_id: int, status: str, now: datetime) -> int:
    """Add the order's timeline row for `status`; its id (the event id clients see)."""
    return await db.insert(_ADD_EVENT, {"order_id": order_id, "status": status, "created_at": now})
