"""Discounts: staff CRUD, and the checks checkout runs against a cart.

Codes are stored upper-cased, so the unique index on `code` makes them unique
case-insensitively and a lookup of the normalised code matches any spelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core import errors
from core.db import retry_on_deadlock
from core.direct import Direct
from core.messages import (
    DISCOUNT_BELOW_MINIMUM,
    DISCOUNT_CODE_TAKEN,
    DISCOUNT_EXHAUSTED,
    DISCOUNT_EXPIRED,
    DISCOUNT_FIXED_AMOUNT,
    DISCOUNT_INACTIVE,
    DISCOUNT_NOT_APPLICABLE,
    DISCOUNT_NOT_STARTED,
    DISCOUNT_PERCENT_RANGE,
    DISCOUNT_UNKNOWN,
    DISCOUNT_WINDOW,
    FIELD_MESSAGES,
    FieldMessage,
)
from models.catalog import Discount
from schemas.common import Pagination, cents_to_str, percent_of, to_utc_text
from schemas.discounts import DiscountIn, DiscountUpdate
from services.catalog import fetch_page, resolve_category
from store import discounts as store_discounts

PERCENT = "percent"
FIXED = "fixed"
# The request field checkout reports discount problems under.
DISCOUNT_FIELD = "discount_code"


@dataclass(frozen=True)
class PricedLine:
    """One cart line at the price checkout will charge."""

    product_id: int
    category_id: int | None
    unit_price_cents: int
    quantity: int

    @property
    def total_cents(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclass(frozen=True)
class DiscountQuote:
    discount: Discount
    amount_cents: int  # never more than the eligible subtotal


def normalize_code(code: str) -> str:
    """The stored and compared form of a code: "save10 " -> "SAVE10"."""
    return code.strip().upper()


def _refuse(msgid: str, **params: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(fields={DISCOUNT_FIELD: [FieldMessage(msgid, **params)]})


async def quote_discount(
    db: Direct, *, code: str, lines: Sequence[PricedLine], now: datetime
) -> DiscountQuote:
    """What `code` takes off an order made of `lines`, inside the caller's transaction.

    Percent discounts are `percent_of(eligible subtotal, value)` (half up, once per
    order); fixed ones are min(value, eligible subtotal). A category-scoped discount
    counts only the lines of its category; `min_order_total` is compared with the
    whole order's subtotal.

    Raises ValidationFailed with `fields.discount_code` naming the reason: unknown,
    inactive, not started, expired, used up, below the minimum total, or no line in
    the discount's category.
    """
    # Never added to a session: read here, and its id and code copied into the order.
    discount = await store_discounts.discount_by_code(db, code=normalize_code(code))
    if discount is None:
        raise _refuse(DISCOUNT_UNKNOWN)
    if not discount.is_active:
        raise _refuse(DISCOUNT_INACTIVE)
    if discount.starts_at is not None and now < discount.starts_at:
        raise _refuse(DISCOUNT_NOT_STARTED, starts_at=to_utc_text(discount.starts_at))
    if discount.ends_at is not None and now >= discount.ends_at:
        raise _refuse(DISCOUNT_EXPIRED)
    if discount.max_uses is not None and discount.used_count >= discount.max_uses:
        raise _refuse(DISCOUNT_EXHAUSTED)
    subtotal = sum(line.total_cents for line in lines)
    if subtotal < discount.min_order_total_cents:
        raise _refuse(
            DISCOUNT_BELOW_MINIMUM, min_order_total=cents_to_str(discount.min_order_total_cents)
        )
    eligible = [
        line
        for line in lines
        if discount.category_id is None or line.category_id == discount.category_id
    ]
    eligible_subtotal = sum(line.total_cents for line in eligible)
    if not eligible or eligible_subtotal == 0:
        raise _refuse(DISCOUNT_NOT_APPLICABLE)
    if discount.kind == PERCENT:
        amount = percent_of(eligible_subtotal, discount.value)
    else:
        amount = discount.value
    return DiscountQuote(discount=discount, amount_cents=min(amount, eligible_subtotal))


async def record_discount_use(db: Direct, *, discount_id: int, now: datetime) -> None:
    """Count one use, inside the caller's transaction.

    A guarded UPDATE, so two checkouts racing for the last use cannot both get it:
    raises ValidationFailed (`fields.discount_code`, used up) when no use is left.
    """
    if not await store_discounts.count_use(db, discount_id=discount_id, now=now):
        raise _refuse(DISCOUNT_EXHAUSTED)


# --- staff CRUD ------------------------------------------------------------------------


async def discount_page(session: AsyncSession, *, page: Pagination) -> tuple[list[Discount], int]:
    """One page of discounts (oldest first) and how many there are."""
    return await fetch_page(
        session, select(Discount).order_by(Discount.id), page, joinedload(Discount.category)
    )


async def require_discount(session: AsyncSession, *, discount_id: int) -> Discount:
    """The discount with its category loaded; raises NotFound."""
    discount = await session.scalar(
        select(Discount).options(joinedload(Discount.category)).where(Discount.id == discount_id)
    )
    if discount is None:
        raise errors.NotFound()
    return discount


async def create_discount(session: AsyncSession, *, data: DiscountIn) -> Discount:
    """Raises ValidationFailed (value, window, unknown category) or Conflict (the
    code exists in any case)."""
    discount = Discount()
    try:
        async with session.begin():
            await _apply(session, discount, data.model_dump())
            session.add(discount)
            await session.flush()  # the unique index decides, not a prior SELECT
    except IntegrityError as error:
        raise errors.Conflict(
            DISCOUNT_CODE_TAKEN, fields={"code": [DISCOUNT_CODE_TAKEN]}
        ) from error
    return discount


async def update_discount(
    session: AsyncSession, *, discount_id: int, changes: DiscountUpdate
) -> Discount:
    """Apply the fields that were sent. Raises NotFound, ValidationFailed or Conflict
    (as create_discount)."""

    async def attempt() -> Discount:
        async with session.begin():
            discount = await require_discount(session, discount_id=discount_id)
            await _apply(session, discount, changes.model_dump(exclude_unset=True))
            await session.flush()
            return discount

    try:
        # Checkout counts uses on the same row; a deadlock with it runs this again.
        discount = await retry_on_deadlock(attempt)
    except IntegrityError as error:
        raise errors.Conflict(
            DISCOUNT_CODE_TAKEN, fields={"code": [DISCOUNT_CODE_TAKEN]}
        ) from error
    return discount


async def delete_discount(session: AsyncSession, *, discount_id: int) -> None:
    """Orders that used it keep its code. Raises NotFound."""

    async def attempt() -> None:
        async with session.begin():
            deleted = await session.execute(delete(Discount).where(Discount.id == discount_id))
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.NotFound()

    await retry_on_deadlock(attempt)


async def _apply(session: AsyncSession, discount: Discount, values: dict[str, Any]) -> None:
    """Set API fields on the row, checking what depends on more than one field."""
    kind = values.pop("kind", discount.kind)
    if "value" in values:
        discount.value = _stored_value(kind, values.pop("value"))
    elif kind != discount.kind:  # a percent is no amount, nor the other way round
        raise errors.ValidationFailed(fields={"value": [FieldMessage(FIELD_MESSAGES["missing"])]})
    discount.kind = kind
    if "code" in values:
        values["code"] = normalize_code(values["code"])
    if "category" in values:
        discount.category = await resolve_category(session, values.pop("category"))
    if "min_order_total" in values:
        values["min_order_total_cents"] = values.pop("min_order_total")
    for name, value in values.items():
        setattr(discount, name, value)
    if discount.starts_at and discount.ends_at and discount.ends_at <= discount.starts_at:
        raise errors.ValidationFailed(fields={"ends_at": [FieldMessage(DISCOUNT_WINDOW)]})


def _stored_value(kind: str, value: Decimal) -> int:
    """A percent as given, an amount as cents; ValidationFailed (`fields.value`) when
    the value does not fit the kind."""
    if kind == PERCENT:
        if value != value.to_integral_value() or not 1 <= value <= 100:
            raise errors.ValidationFailed(fields={"value": [FieldMessage(DISCOUNT_PERCENT_RANGE)]})
        return int(value)
    cents = int(value * 100)
    if cents <= 0:
        raise errors.ValidationFailed(fields={"value": [FieldMessage(DISCOUNT_FIXED_AMOUNT)]})
    return cents
