"""Request and response models for /api/v1/orders and payments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, cast

import babel
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from schemas.common import AwareDatetime, MoneyOut, PageParams, RequestModel, UtcDatetime

# CLDR (through Babel) knows every ISO 3166-1 alpha-2 code plus a few of its own:
# exceptionally reserved codes (AC CP CQ DG EA IC TA), groupings (EU EZ QO UN) and
# user-assigned or unknown ones (XA XB XK ZZ). Those are not countries to ship to.
_NOT_ISO_3166_1 = frozenset("AC CP CQ DG EA IC TA EU EZ QO UN XA XB XK ZZ".split())
COUNTRY_CODES = frozenset(
    code
    for code in babel.Locale("en").territories
    if isinstance(code, str) and len(code) == 2 and code.isalpha() and code not in _NOT_ISO_3166_1
)

OrderStatus = Literal[
    "pending_payment",
    "paid",
    "processing",
    "shipped",
    "delivered",
    "payment_failed",
    "cancelled",
    "expired",
    "refunded",
]


def _country_code(value: str) -> str:
    code = value.upper()
    if code not in COUNTRY_CODES:
        raise PydanticCustomError("country_code", "not an ISO 3166-1 alpha-2 code")
    return code


def _country_pattern() -> str:
    """A regex for COUNTRY_CODES in any case (`de` is taken as `DE`): one alternative per
    first letter, e.g. `[Dd][EeJjKkMmOoZz]`."""
    seconds: dict[str, list[str]] = {}
    for code in sorted(COUNTRY_CODES):
        seconds.setdefault(code[0], []).append(code[1])

    def any_case(letters: list[str]) -> str:
        return "[" + "".join(letter + letter.lower() for letter in letters) + "]"

    alternatives = [any_case([first]) + any_case(rest) for first, rest in seconds.items()]
    return f"^(?:{'|'.join(alternatives)})$"


class ShippingAddress(RequestModel):
    name: str = Field(min_length=1, max_length=150)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: Annotated[
        str,
        Field(
            min_length=2,
            max_length=2,
            description="ISO 3166-1 alpha-2, e.g. DE",
            json_schema_extra={"pattern": _country_pattern()},
        ),
        AfterValidator(_country_code),
    ]


class OrderCreate(RequestModel):
    shipping_address: ShippingAddress
    discount_code: str | None = Field(default=None, min_length=1, max_length=50)


def _status_list(value: object) -> object:
    """`status=paid,shipped` (or one status) as a list; a blank one stays a string,
    which is refused (leave the parameter out to list every status)."""
    if isinstance(value, str):
        statuses = [part.strip() for part in value.split(",") if part.strip()]
        return statuses or value
    return value


class OrderQuery(PageParams):
    """Filters of GET /orders; `user` is for staff only."""

    status: Annotated[list[OrderStatus] | None, BeforeValidator(_status_list)] = Field(
        default=None, description="One status or a comma-separated list."
    )
    user: int | None = Field(default=None, ge=1, le=10**18 - 1, description="Staff only.")
    placed_after: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with a time zone; inclusive."
    )
    placed_before: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with a time zone; exclusive."
    )


class OrderStatusUpdate(RequestModel):
    status: OrderStatus


class OrderItemOut(BaseModel):
    product: str
    name: str
    unit_price: MoneyOut
    quantity: int
    line_total: MoneyOut


class AddressOut(BaseModel):
    name: str
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str


class OrderItemFields(Protocol):
    """What OrderOut shows of an item: an OrderItem's, or the row checkout wrote."""

    @property
    def product_slug(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def unit_price_cents(self) -> int: ...
    @property
    def quantity(self) -> int: ...


class OrderFields(Protocol):
    """What OrderOut shows of an order: an Order (items loaded), or the row checkout
    wrote (services/checkout.py), which is no ORM object."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def items(self) -> Sequence[OrderItemFields]: ...
    @property
    def subtotal_cents(self) -> int: ...
    @property
    def discount_code(self) -> str | None: ...
    @property
    def discount_total_cents(self) -> int: ...
    @property
    def total_cents(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def shipping_address(self) -> Mapping[str, Any]: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def last_event_id(self) -> int | None: ...


class OrderOut(BaseModel):
    id: int
    status: OrderStatus
    items: list[OrderItemOut]
    subtotal: MoneyOut
    discount_code: str | None
    discount_total: MoneyOut
    total: MoneyOut
    currency: str
    shipping_address: AddressOut
    created_at: UtcDatetime
    updated_at: UtcDatetime
    last_event_id: int | None = Field(
        description="The newest status event: open /ws/orders?since=<this> to miss no change"
    )

    @classmethod
    def of(cls, order: OrderFields) -> OrderOut:
        """`order` with its items loaded."""
        return cls(
            id=order.id,
            status=cast(OrderStatus, order.status),
            items=[
                OrderItemOut(
                    product=item.product_slug,
                    name=item.name,
                    unit_price=item.unit_price_cents,
                    quantity=item.quantity,
                    line_total=item.unit_price_cents * item.quantity,
                )
                for item in order.items
            ],
            subtotal=order.subtotal_cents,
            discount_code=order.discount_code,
            discount_total=order.discount_total_cents,
            total=order.total_cents,
            currency=order.currency,
            shipping_address=AddressOut.model_validate(order.shipping_address),
            created_at=order.created_at,
            updated_at=order.updated_at,
            last_event_id=order.last_event_id,
        )


class OrderEventFields(Protocol):
    """What OrderEventOut shows of a timeline row (an OrderEvent)."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


class OrderEventOut(BaseModel):
    id: int
    status: OrderStatus
    at: UtcDatetime

    @classmethod
    def of(cls, event: OrderEventFields) -> OrderEventOut:
        return cls(id=event.id, status=cast(OrderStatus, event.status), at=event.created_at)


class PayIn(RequestModel):
    """Optional. Only the `fake` payments backend (DEBUG) reads it."""

    outcome: Literal["succeeded", "failed"] = Field(
        default="succeeded", description="What the fake payment does."
    )


class PaymentOut(BaseModel):
    provider: Literal["stripe", "fake"]
    client_secret: str
    payment_intent_id: str


class OrderTimelineOut(BaseModel):
    """The order's status changes, oldest first (an object, like every other answer, so
    fields can be added without breaking clients)."""

    results: list[OrderEventOut]


class StripeObjectIn(RequestModel):
    """The part of a webhook event's `data.object` (a PaymentIntent or a Charge) that the
    service reads; Stripe sends much more, which is ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(default=None, max_length=255)
    metadata: dict[str, str] = Field(default_factory=dict)
    # A Charge's PaymentIntent (the column that matches it holds 255 characters).
    payment_intent: str | None = Field(default=None, max_length=255)
    refunded: bool = False


class StripeEventDataIn(RequestModel):
    model_config = ConfigDict(extra="ignore")

    object: StripeObjectIn


class StripeEventIn(RequestModel):
    """A webhook event as Stripe sends it, checked to fit the columns it is stored in."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=100)
    data: StripeEventDataIn
