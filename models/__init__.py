"""ORM models, one module per domain. Importing this package registers every table."""

from models.accounts import EmailVerificationToken, RefreshToken, User
from models.base import Base
from models.catalog import Category, Discount, Product, Review
from models.mail import OutboxMessage
from models.orders import Cart, CartItem, Order, OrderEvent, OrderItem, StripeEvent

__all__ = [
    "Base",
    "Cart",
    "CartItem",
    "Category",
    "Discount",
    "EmailVerificationToken",
    "Order",
    "OrderEvent",
    "OrderItem",
    "OutboxMessage",
    "Product",
    "RefreshToken",
    "Review",
    "StripeEvent",
    "User",
]
