"""Request and response models for /api/v1/discounts (staff only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StringConstraints, WithJsonSchema, field_serializer

from schemas.catalog import Amount, NotNull, Slug, SlugRef
from schemas.common import (
    AwareDatetime,
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
    Field(max_digits=9, decimal_places=2),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 9_999_999.99},
                {"type": "string", "pattern": r"^\d{1,7}(?:\.\d{1,2})?$"},
            ],
            "description": 'A whole percent (1..100) for kind "percent", an amount above '
            'zero with at most two places ("5.00") for "fixed".',
        }
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
    max_uses: MaxUses | None = Field(default=None, description="Null: no limit.")
    min_order_total: Amount = Field(default=0, json_schema_extra={"default": "0.00"})
    is_active: StrictBool = True


class DiscountUpdate(RequestModel):
    """Every field optional; changing `kind` needs a `value` that fits the new kind."""

    code: NotNull[Code] = None
    kind: NotNull[Kind] = None
    value: NotNull[Value] = None
    category: Slug | None = Field(default=None, description="Null: the whole order.")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    max_uses: MaxUses | None = Field(default=None, description="Null: no limit.")
    min_order_total: NotNull[Amount] = None
    is_active: NotNull[StrictBool] = None


class DiscountOut(ORMModel):
    id: int
    code: str
    kind: Kind
    value: Annotated[
        int,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": r"^\d+(?:\.\d{2})?$",
                "description": 'Always a string: a whole percent ("10") for "percent", an '
                'amount ("5.00") for "fixed".',
            }
        ),
    ]
    category: SlugRef
    starts_at: UtcDatetime | None
    ends_at: UtcDatetime | None
    max_uses: int | None
    used_count: int
    min_order_total: MoneyOut = Field(validation_alias="min_order_total_cents")
    is_active: bool

    @field_serializer("value")
    def _value(self, value: int) -> str:
        return cents_to_str(value) if self.kind == "fixed" else str(value)
