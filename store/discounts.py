"""A discount's row as checkout reads it, and its use counter.

The counter only moves through guarded UPDATEs, so two orders racing for the last use
cannot both get it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnClause, bindparam, literal_column, or_, select, update

from core.direct import Direct, Statement
from models.base import object_of_row, table_of
from models.catalog import Discount

_DISCOUNTS = table_of(Discount)
_DISCOUNT_OF_ROW = object_of_row(Discount)
_BY_CODE = Statement(select(*_DISCOUNTS.c).where(_DISCOUNTS.c.code == bindparam("code")))
_THIS_DISCOUNT = _DISCOUNTS.c.id == bindparam("discount_id")
# Literals: every value of a direct statement is a named parameter or none.
_ONE: ColumnClause[int] = literal_column("1")
_COUNT_USE = Statement(
    update(_DISCOUNTS)
    .where(
        _THIS_DISCOUNT,
        or_(_DISCOUNTS.c.max_uses.is_(None), _DISCOUNTS.c.used_count < _DISCOUNTS.c.max_uses),
    )
    .values(used_count=_DISCOUNTS.c.used_count + _ONE, updated_at=bindparam("now"))
)
_COUNT_USE_ANYWAY = Statement(
    update(_DISCOUNTS)
    .where(_THIS_DISCOUNT)
    .values(used_count=_DISCOUNTS.c.used_count + _ONE, updated_at=bindparam("now"))
)
_UNCOUNT_USE = Statement(
    update(_DISCOUNTS)
    .where(_THIS_DISCOUNT, _DISCOUNTS.c.used_count > literal_column("0"))
    .values(used_count=_DISCOUNTS.c.used_count - _ONE, updated_at=bindparam("now"))
)


async def discount_by_code(db: Direct, *, code: str) -> Discount | None:
    """The discount with this (normalised) code, as a transient Discount never added to
    a session."""
    rows = await db.rows(_BY_CODE, {"code": code})
    return _DISCOUNT_OF_ROW(rows[0]) if rows else None


async def count_use(db: Direct, *, discount_id: int, now: datetime) -> bool:
    """Count one use unless none is left; whether it was counted."""
    return await db.write(_COUNT_USE, {"discount_id": discount_id, "now": now}) == 1


async def count_use_past_limit(db: Direct, *, discount_id: int, now: datetime) -> None:
    """Count one use even past `max_uses` (an order priced while a use was left)."""
    await db.write(_COUNT_USE_ANYWAY, {"discount_id": discount_id, "now": now})


async def uncount_use(db: Direct, *, discount_id: int, now: datetime) -> None:
    """Give one use back (never below zero)."""
    await db.write(_UNCOUNT_USE, {"discount_id": discount_id, "now": now})
