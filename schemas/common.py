"""Types shared by every domain's schemas: money, timestamps, pages, errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Generic, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError, to_json

T = TypeVar("T")
# The largest single amount accepted: prices and discount amounts live in INTEGER
# columns, 32-bit on MariaDB (order totals, which add them up, are 64-bit).
MAX_CENTS = 2**31 - 1
_MAX_AMOUNT = Decimal(MAX_CENTS) / 100


def cents_to_str(cents: int) -> str:
    """1999 -> "19.99"."""
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def parse_money(value: Any) -> int:
    """A decimal string with at most two places -> integer cents. A JSON number is
    refused: money travels as a string (docs/api.md), so no float ever rounds it.

    Raises the `money_invalid` error (translated through core/messages.py).
    """
    invalid = PydanticCustomError("money_invalid", "invalid amount")
    if not isinstance(value, str):
        raise invalid
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as error:
        raise invalid from error
    if not amount.is_finite() or amount < 0:
        raise invalid
    # Bounded before it is quantized: "1e30" has more digits than the decimal context
    # holds, and quantizing it raises InvalidOperation.
    if amount > _MAX_AMOUNT:
        raise PydanticCustomError(
            "less_than_equal", "amount too large", {"le": cents_to_str(MAX_CENTS)}
        )
    if amount != amount.quantize(Decimal("0.01")):
        raise invalid
    return int(amount * 100)


def validate_email_address(value: str) -> str:
    """Syntax check only (no DNS lookup: nothing blocking per request); lower-cased.

    Raises the `email_invalid` error.
    """
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise PydanticCustomError("email_invalid", "invalid email") from error


def percent_of(cents: int, percent: int) -> int:
    """`percent`% of `cents`, rounded half up to the cent (the one rounding rule)."""
    return int((Decimal(cents) * percent / 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def to_utc_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise PydanticCustomError("timezone_required", "time zone required")
    return value.astimezone(UTC)


_MONEY_SCHEMA = {"type": "string", "pattern": r"^\d+\.\d{2}$", "example": "19.99"}

# Money in a response: integer cents rendered as "19.99".
MoneyOut = Annotated[
    int, PlainSerializer(cents_to_str, return_type=str), WithJsonSchema(_MONEY_SCHEMA)
]
# Money in a request: "19.99" parsed to integer cents (a JSON number is refused).
MoneyIn = Annotated[int, BeforeValidator(parse_money), WithJsonSchema(_MONEY_SCHEMA)]
# Timestamps: ISO 8601 UTC with Z out; an aware datetime in.
UtcDatetime = Annotated[
    datetime,
    PlainSerializer(to_utc_text, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-01-31T12:00:00Z"}),
]


def _iso_8601_only(value: Any) -> Any:
    """Pydantic also reads numbers (and numeric strings) as Unix times: only ISO 8601
    text, as documented, is a time here."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise PydanticCustomError("datetime_parsing", "not an ISO 8601 time")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
AwareDatetime = Annotated[datetime, BeforeValidator(_iso_8601_only), AfterValidator(_require_aware)]
Email = Annotated[
    str,
    Field(max_length=254),
    AfterValidator(validate_email_address),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]


class ORMModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class RequestModel(BaseModel):
    """Request bodies reject unknown fields, so a typo is an error, not a silent no-op,
    and strings holding a NUL byte (`nul_character`), which databases and C libraries
    treat as the end of the string."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _reject_nul(cls, value: Any) -> Any:
        # Each field's own value: nested request models check their own fields.
        if isinstance(value, str) and "\0" in value:
            raise PydanticCustomError("nul_character", "null character")
        return value


def encode_json(value: Any) -> bytes:
    """The one JSON encoding of responses: compact, UTF-8, non-ASCII left as it is.

    pydantic's encoder writes the bytes `json.dumps(value, separators=(",", ":"),
    ensure_ascii=False)` would, in a fraction of the time, and takes response models
    (and lists of them) as they are, with no `model_dump` first.
    """
    return to_json(value)


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1, le=10**9)
    page_size: int | None = Field(default=None, ge=1)


@dataclass(frozen=True)
class Pagination:
    """A validated page request: `page_size` already clamped to MAX_PAGE_SIZE."""

    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


class Page(BaseModel, Generic[T]):
    count: int
    page: int
    page_size: int
    next: str | None
    previous: str | None
    results: list[T]


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, list[str]] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody
