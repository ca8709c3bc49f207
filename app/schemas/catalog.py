"""Request and response models for categories and products."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    computed_field,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.schemas.common import (
    MoneyIn,
    MoneyOut,
    ORMModel,
    PageParams,
    RequestModel,
    UtcDatetime,
)

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
Slug = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=SLUG_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Stock = Annotated[int, Field(ge=0, le=10**9)]
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


# A related row in a response: its slug (or null when the relation is optional).
RowSlug = Annotated[str, BeforeValidator(_slug_of)]
SlugRef = Annotated[str | None, BeforeValidator(_slug_of)]
# A query-string filter: `?q=` counts as not given.
QueryText = Annotated[str | None, BeforeValidator(_blank_is_absent)]
QueryMoney = Annotated[MoneyIn | None, BeforeValidator(_blank_is_absent)]


class CategoryIn(RequestModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    slug: Slug | None = Field(default=None, description="Made from the name when left out.")


class CategoryUpdate(RequestModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    slug: Slug | None = None

    _not_null = field_validator("name", "slug", mode="before")(reject_null)


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
    price: MoneyIn
    category: Slug | None = Field(default=None, description="A category slug, or null.")
    stock: Stock = 0
    is_active: bool = True


class ProductUpdate(RequestModel):
    """Every field optional; `category: null` takes the product out of its category."""

    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    price: MoneyIn | None = None
    category: Slug | None = None
    stock: Stock | None = None
    is_active: bool | None = None

    _not_null = field_validator(
        "name", "slug", "description", "price", "stock", "is_active", mode="before"
    )(reject_null)


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
