"""quote_discount and record_discount_use: what checkout asks of a discount code."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from core import errors
from core.context import AppContext
from core.messages import (
    DISCOUNT_BELOW_MINIMUM,
    DISCOUNT_EXHAUSTED,
    DISCOUNT_EXPIRED,
    DISCOUNT_INACTIVE,
    DISCOUNT_NOT_APPLICABLE,
    DISCOUNT_NOT_STARTED,
    DISCOUNT_UNKNOWN,
)
from models.base import utcnow
from models.catalog import Discount
from services.discounts import (
    DiscountQuote,
    PricedLine,
    quote_discount,
    record_discount_use,
)
from tests.catalog_factories import create_category, create_discount

NOW = utcnow().replace(microsecond=0)
LAMP = PricedLine(product_id=1, category_id=None, unit_price_cents=333, quantity=3)  # 9.99


async def quote(
    ctx: AppContext, code: str, lines: Sequence[PricedLine] = (LAMP,), now: datetime = NOW
) -> DiscountQuote:
    async with ctx.transactions() as db:
        return await quote_discount(db, code=code, lines=lines, now=now)


async def refusal(ctx: AppContext, code: str, **kwargs: object) -> str:
    """The one reason quote_discount gives for refusing `code`."""
    with pytest.raises(errors.ValidationFailed) as refused:
        await quote(ctx, code, **kwargs)  # type: ignore[arg-type]
    [reason] = refused.value.fields["discount_code"]
    return reason


async def use(ctx: AppContext, discount_id: int) -> None:
    async with ctx.transactions() as db:
        await record_discount_use(db, discount_id=discount_id, now=NOW)


async def used_count(ctx: AppContext, discount_id: int) -> int:
    async with ctx.sessionmaker() as session:
        return (await session.get_one(Discount, discount_id)).used_count


async def test_a_percent_discount_rounds_half_up_once_per_order(ctx: AppContext) -> None:
    await create_discount(ctx, "SAVE15", value=15)
    quoted = await quote(ctx, "save15")  # 15% of 9.99 = 1.4985
    assert quoted.amount_cents == 150
    assert quoted.discount.code == "SAVE15"


async def test_codes_match_whatever_their_case_and_spacing(ctx: AppContext) -> None:
    await create_discount(ctx, "Spring-Sale", value=10)
    assert (await quote(ctx, "  sPRING-sale ")).discount.code == "SPRING-SALE"


async def test_a_fixed_discount_never_exceeds_what_it_applies_to(ctx: AppContext) -> None:
    await create_discount(ctx, "FIVE", kind="fixed", value="5.00")
    await create_discount(ctx, "FIFTY", kind="fixed", value="50.00")
    assert (await quote(ctx, "FIVE")).amount_cents == 500
    assert (await quote(ctx, "FIFTY")).amount_cents == 999


async def test_a_category_discount_counts_only_that_categorys_lines(ctx: AppContext) -> None:
    lighting = await create_category(ctx, "Lighting")
    await create_discount(ctx, "LAMPS", value=50, category=lighting)
    await create_discount(ctx, "LAMPS5", kind="fixed", value="5.00", category=lighting)
    lamp = PricedLine(product_id=1, category_id=lighting.id, unit_price_cents=1000, quantity=1)
    desk = PricedLine(product_id=2, category_id=None, unit_price_cents=9000, quantity=1)
    assert (await quote(ctx, "LAMPS", [lamp, desk])).amount_cents == 500
    assert (await quote(ctx, "LAMPS5", [lamp, desk])).amount_cents == 500
    assert await refusal(ctx, "LAMPS", lines=[desk]) == DISCOUNT_NOT_APPLICABLE


async def test_the_minimum_total_is_compared_with_the_whole_order(ctx: AppContext) -> None:
    lighting = await create_category(ctx, "Lighting")
    await create_discount(ctx, "BIG", value=10, category=lighting, min_order_total="50.00")
    lamp = PricedLine(product_id=1, category_id=lighting.id, unit_price_cents=1000, quantity=1)
    desk = PricedLine(product_id=2, category_id=None, unit_price_cents=4000, quantity=1)
    assert (await quote(ctx, "BIG", [lamp, desk])).amount_cents == 100
    with pytest.raises(errors.ValidationFailed) as refused:
        await quote(ctx, "BIG", [lamp])
    [reason] = refused.value.fields["discount_code"]
    assert reason == DISCOUNT_BELOW_MINIMUM
    assert reason.params == {"min_order_total": "50.00"}  # type: ignore[attr-defined]


async def test_a_code_applies_only_within_its_validity_window(ctx: AppContext) -> None:
    starts, ends = NOW + timedelta(days=1), NOW + timedelta(days=2)
    await create_discount(ctx, "WEEKEND", value=10, starts_at=starts, ends_at=ends)
    assert await refusal(ctx, "WEEKEND") == DISCOUNT_NOT_STARTED
    assert (await quote(ctx, "WEEKEND", now=starts)).amount_cents == 100
    assert (await quote(ctx, "WEEKEND", now=ends - timedelta(seconds=1))).amount_cents == 100
    assert await refusal(ctx, "WEEKEND", now=ends) == DISCOUNT_EXPIRED


async def test_unknown_and_inactive_codes_are_refused_with_their_reason(
    ctx: AppContext,
) -> None:
    await create_discount(ctx, "PAUSED", is_active=False)
    assert await refusal(ctx, "NOPE") == DISCOUNT_UNKNOWN
    assert await refusal(ctx, "PAUSED") == DISCOUNT_INACTIVE


async def test_uses_are_counted_up_to_the_limit(ctx: AppContext) -> None:
    discount = await create_discount(ctx, "TWICE", max_uses=2)
    await use(ctx, discount.id)
    assert (await quote(ctx, "TWICE")).amount_cents == 100
    await use(ctx, discount.id)
    assert await refusal(ctx, "TWICE") == DISCOUNT_EXHAUSTED
    with pytest.raises(errors.ValidationFailed) as refused:
        await use(ctx, discount.id)
    assert refused.value.fields["discount_code"] == [DISCOUNT_EXHAUSTED]
    assert await used_count(ctx, discount.id) == 2


async def test_two_checkouts_racing_for_the_last_use_get_it_once(ctx: AppContext) -> None:
    discount = await create_discount(ctx, "LAST", max_uses=1)
    outcomes = await asyncio.gather(
        use(ctx, discount.id), use(ctx, discount.id), return_exceptions=True
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "NoneType",
        "ValidationFailed",
    ]
    assert await used_count(ctx, discount.id) == 1


async def test_a_code_without_a_limit_counts_every_use(ctx: AppContext) -> None:
    discount = await create_discount(ctx, "ALWAYS")
    for _ in range(3):
        await use(ctx, discount.id)
    assert await used_count(ctx, discount.id) == 3
