"""Request and response models for categories and products."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    computed_field,
)
from pydantic_core import PydanticCustomError

from schemas.common import (
    MAX_CENTS,
    MoneyIn,
    MoneyOut,
    ORMModel,
    PageParams,
    RequestModel,
    UtcDatetime,
    cents_to_str,
)

T = TypeVar("T")

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
Slug = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=SLUG_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Stock = Annotated[StrictInt, Field(ge=0, le=10**9)]
Description = Annotated[str, StringConstraints(max_length=20_000)]


def _slug_of(value: Any) -> Any:
    """A related row (Category, Product) is shown by its slug."""
    return getattr(value, "slug", value)


def _blank_is_absent(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    return value


def reject_null(value: Any) -> Any:
    """For PATCH fields that may be left out but never set to null."""
    if value is None:
        raise PydanticCustomError("not_nullable", "null is not allowed")
    return value


def _document_not_null(schema: dict[str, Any]) -> None:
    """Drop the null variant (and `default: null`) pydantic documents for `T | None`."""
    variants = schema.pop("anyOf")
    (kept,) = [variant for variant in variants if variant != {"type": "null"}]
    schema.pop("default", None)
    schema.update(kept)


# A PATCH field that may be left out but never set to null, and documented so.
NotNull = Annotated[
    T | None, BeforeValidator(reject_null), Field(json_schema_extra=_document_not_null)
]


def _digits_at_most(limit: str) -> str:
    """Regex alternatives matching the digit strings as long as `limit` and <= it."""
    alternatives = [limit]
    for position, digit in enumerate(limit):
        if digit != "0":
            lower = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            alternatives.append(limit[:position] + lower + r"\d" * (len(limit) - position - 1))
    return "|".join(alternatives)


def amount_pattern(max_cents: int) -> str:
    """A regex for the decimal strings with at most two places worth at most
    `max_cents` (>= 100) cents: a smaller whole part with any cents, or the same whole
    part with no more cents."""
    whole, cents = divmod(max_cents, 100)
    below = str(whole - 1)
    shorter = [rf"\d{{1,{len(below) - 1}}}"] if len(below) > 1 else []
    smaller_whole = "|".join([*shorter, _digits_at_most(below)])
    top_cents = f"{_digits_at_most(f'{cents:02d}')}|{_digits_at_most(str(cents // 10))}"
    return rf"0*(?:(?:{smaller_whole})(?:\.\d{{1,2}})?|{whole}(?:\.(?:{top_cents}))?)"


_AMOUNT = amount_pattern(MAX_CENTS)
_AMOUNT_LIMIT = f"at most {cents_to_str(MAX_CENTS)}"
# Money in a request, documented with the ceiling that parsing enforces.
Amount = Annotated[
    MoneyIn,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^{_AMOUNT}$",
            "description": f"A decimal string with up to two places, {_AMOUNT_LIMIT}.",
            "example": "19.99",
        }
    ),
]
# A related row in a response: its slug (or null when the relation is optional).
RowSlug = Annotated[str, BeforeValidator(_slug_of)]
SlugRef = Annotated[str | None, BeforeValidator(_slug_of)]
# A query-string filter: `?q=` (blank) counts as not given.
QueryText = Annotated[str | None, BeforeValidator(_blank_is_absent)]
QueryMoney = Annotated[
    MoneyIn | None,
    BeforeValidator(_blank_is_absent),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^(?:{_AMOUNT})?$",
            "description": f"An amount such as 19.99, {_AMOUNT_LIMIT}; blank: not given.",
        }
    ),
]
CategoryName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class CategoryIn(RequestModel):
    name: CategoryName
    slug: Slug | None = Field(default=None, description="Made from the name when left out.")


class CategoryUpdate(RequestModel):
    name: NotNull[CategoryName] = None
    slug: NotNull[Slug] = None


class CategoryOut(ORMModel):
    id: int
    slug: str
    name: str


class ProductQuery(PageParams):
    category: QueryText = Field(default=None, max_length=120, description="A category slug.")
    min_price: QueryMoney = None
    max_price: QueryMoney = None
    q: QueryText = Field(default=None, max_length=100, description="Part of the name.")
    ordering: Literal["price", "-price", "name", "-created"] = "-created"


class ProductIn(RequestModel):
    name: Name
    slug: Slug | None = Field(default=None, description="Made from the name when left out.")
    description: Description = ""
    price: Amount
    category: Slug | None = Field(default=None, description="A category slug, or null.")
    stock: Stock = 0
    is_active: StrictBool = True


class ProductUpdate(RequestModel):
    """Every field optional; `category: null` takes the product out of its category."""

    name: NotNull[Name] = None
    slug: NotNull[Slug] = None
    description: NotNull[Description] = None
    price: NotNull[Amount] = None
    category: Slug | None = Field(default=None, description="A category slug, or null.")
    stock: NotNull[Stock] = None
    is_active: NotNull[StrictBool] = None


class ProductOut(ORMModel):
    id: int
    slug: str
    name: str
    description: str
    price: MoneyOut = Field(validation_alias="price_cents")
    currency: str
    category: SlugRef
    stock: int
    rating_avg: float | None
    rating_count: int
    is_active: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def in_stock(self) -> bool:
        return self.stock > 0
