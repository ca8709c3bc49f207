"""Request and response models for /api/v1/cart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Protocol

from pydantic import BaseModel, Field

from schemas.common import MoneyOut, RequestModel

# One line holds at most this many of a product: plenty for a shopper, and a typo
# (1000 instead of 10) is refused instead of being reserved at checkout.
MAX_LINE_QUANTITY = 99

Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_LINE_QUANTITY)]


class CartItemIn(RequestModel):
    product: str = Field(min_length=1, max_length=120, description="The product's slug")
    quantity: Quantity = 1


class CartItemUpdate(RequestModel):
    quantity: Quantity


class CartLineOut(BaseModel):
    product: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut
    # What can be bought right now; a line may ask for more (reported, not refused).
    available: int


class CartProductFields(Protocol):
    """What a cart line shows of its product (a Product)."""

    @property
    def slug(self) -> str: ...
    @property
    def price_cents(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def stock(self) -> int: ...
    @property
    def is_active(self) -> bool: ...


class CartItemFields(Protocol):
    @property
    def quantity(self) -> int: ...
    @property
    def product(self) -> CartProductFields: ...


class CartFields(Protocol):
    """What CartOut shows of a cart: a Cart with its items and their products loaded."""

    @property
    def items(self) -> Sequence[CartItemFields]: ...


class CartOut(BaseModel):
    items: list[CartLineOut]
    subtotal: MoneyOut
    # The currency of every line; null for an empty cart.
    currency: str | None

    @classmethod
    def of(cls, cart: CartFields | None) -> CartOut:
        """The cart at current catalog prices (a user without a cart has an empty one)."""
        items: Sequence[CartItemFields] = cart.items if cart is not None else []
        lines = [
            CartLineOut(
                product=item.product.slug,
                quantity=item.quantity,
                unit_price=item.product.price_cents,
                line_total=item.product.price_cents * item.quantity,
                available=item.product.stock if item.product.is_active else 0,
            )
            for item in items
        ]
        currencies = {item.product.currency for item in items}
        return cls(
            items=lines,
            subtotal=sum(line.line_total for line in lines),
            currency=currencies.pop() if len(currencies) == 1 else None,
        )
