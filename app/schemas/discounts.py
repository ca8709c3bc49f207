"""Request and response models for /api/v1/discounts (staff only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_serializer, field_validator

from app.schemas.catalog import Slug, SlugRef, reject_null
from app.schemas.common import (
    AwareDatetime,
    MoneyIn,
    MoneyOut,
    ORMModel,
    RequestModel,
    UtcDatetime,
    cents_to_str,
)

Code = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_-]+$")]
Kind = Literal["percent", "fixed"]
# Percent: a whole number 1..100; fixed: an amount such as "5.00" (checked against
# the kind by the service, which knows the kind a PATCH leaves in place).
Value = Annotated[
    Decimal,
    Field(
        max_digits=9,
        decimal_places=2,
        description='Percent (1..100) for kind "percent", an amount ("5.00") for "fixed".',
    ),
]
MaxUses = Annotated[int, Field(ge=1, le=10**9)]


class DiscountIn(RequestModel):
    code: Code = Field(description="Unique whatever its case; stored upper-cased.")
    kind: Kind
    value: Value
    category: Slug | None = Field(default=None, description="Null: the whole order.")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    max_uses: MaxUses | None = None
    min_order_total: MoneyIn = Field(default=0, json_schema_extra={"default": "0.00"})
    is_active: bool = True


class DiscountUpdate(RequestModel):
    """Every field optional; changing `kind` needs a `value` that fits the new kind."""

    code: Code | None = None
    kind: Kind | None = None
    value: Value | None = None
    category: Slug | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    max_uses: MaxUses | None = None
    min_order_total: MoneyIn | None = None
    is_active: bool | None = None

    _not_null = field_validator(
        "code", "kind", "value", "min_order_total", "is_active", mode="before"
    )(reject_null)


class DiscountOut(ORMModel):
    id: int
    code: str
    kind: Kind
    value: int = Field(description='An integer percent, or an amount string for "fixed".')
    category: SlugRef
    starts_at: UtcDatetime | None
    ends_at: UtcDatetime | None
    max_uses: int | None
    used_count: int
    min_order_total: MoneyOut = Field(validation_alias="min_order_total_cents")
    is_active: bool

    @field_serializer("value")
    def _value(self, value: int) -> int | str:
        return cents_to_str(value) if self.kind == "fixed" else value
