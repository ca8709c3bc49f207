"""Carts, orders, their status timeline and processed Stripe events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from models.base import Base, TimestampMixin, exact_string
from models.catalog import Product


class Cart(TimestampMixin, Base):
    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)

    items: Mapped[list[CartItem]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="CartItem.id"
    )


class CartItem(Base):
    __tablename__ = "cart_items"
    __table_args__ = (
        UniqueConstraint("cart_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    quantity: Mapped[int]

    product: Mapped[Product] = relationship(lazy="raise")


class OrderEvent(Base):
    """One row per status transition: the order's timeline and the websocket cursor."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


class Order(TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # 64-bit: a total can exceed what a 32-bit price column holds (price x quantity x lines).
    subtotal_cents: Mapped[int] = mapped_column(BigInteger)
    discount_id: Mapped[int | None] = mapped_column(ForeignKey("discounts.id", ondelete="SET NULL"))
    discount_code: Mapped[str | None] = mapped_column(String(50))
    discount_total_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(exact_string(255))
    payment_intent_id: Mapped[str | None] = mapped_column(exact_string(255), index=True)
    # The newest timeline row: a client that read the order resumes its websocket there.
    last_event_id: Mapped[int | None] = column_property(
        select(func.max(OrderEvent.id))
        .where(OrderEvent.order_id == id)
        .correlate_except(OrderEvent)
        .scalar_subquery()
    )

    items: Mapped[list[OrderItem]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="OrderItem.id"
    )


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True
    )
    # Snapshots taken at checkout: later catalog edits never change a placed order.
    product_slug: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int]
    quantity: Mapped[int]


class StripeEvent(Base):
    """A processed webhook event; the primary key makes a replay a no-op."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(exact_string(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime]
