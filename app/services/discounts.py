"""Discounts: staff CRUD, and the checks checkout runs against a cart.

Codes are stored upper-cased, so the unique index on `code` makes them unique
case-insensitively and a lookup of the normalised code matches any spelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.messages import (
    DISCOUNT_BELOW_MINIMUM,
    DISCOUNT_EXHAUSTED,
    DISCOUNT_EXPIRED,
    DISCOUNT_INACTIVE,
    DISCOUNT_NOT_APPLICABLE,
    DISCOUNT_NOT_STARTED,
    DISCOUNT_UNKNOWN,
    FieldMessage,
)
from app.schemas.common import cents_to_str, percent_of, to_utc_text
from models.catalog import Discount

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
    session: AsyncSession, *, code: str, lines: Sequence[PricedLine], now: datetime
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
    discount = await session.scalar(select(Discount).where(Discount.code == normalize_code(code)))
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


async def record_discount_use(session: AsyncSession, *, discount_id: int) -> None:
    """Count one use, inside the caller's transaction.

    A guarded UPDATE, so two checkouts racing for the last use cannot both get it:
    raises ValidationFailed (`fields.discount_code`, used up) when no use is left.
    """
    counted = await session.execute(
        update(Discount)
        .where(
            Discount.id == discount_id,
            or_(Discount.max_uses.is_(None), Discount.used_count < Discount.max_uses),
        )
        .values(used_count=Discount.used_count + 1)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        raise _refuse(DISCOUNT_EXHAUSTED)
