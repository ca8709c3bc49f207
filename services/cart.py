"""Carts: one per user, holding products and quantities until checkout.

A cart may ask for more than the stock (the shopper sees `available` per line);
stock is only taken at checkout. Every change locks the user's cart row first, so
concurrent requests of one shopper apply one after the other; one that still meets a
deadlock on MariaDB (checkout empties the cart too) is run again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core import errors
from core.db import retry_on_deadlock
from core.messages import CART_LINE_LIMIT, CART_MIXED_CURRENCY, FieldMessage
from models.base import utcnow
from models.catalog import Product
from models.orders import Cart, CartItem
from schemas.cart import MAX_LINE_QUANTITY


async def get_cart(session: AsyncSession, *, user_id: int) -> Cart | None:
    """The user's cart with its items and their products loaded; None before the first add."""
    async with session.begin():
        return await _load(session, user_id)


async def add_item(
    session: AsyncSession, *, user_id: int, slug: str, quantity: int, now: datetime | None = None
) -> Cart:
    """Add `quantity` of the product to the cart (to its line when there is one).

    Raises NotFound for an unknown or inactive product, ValidationFailed when the line
    would exceed MAX_LINE_QUANTITY or the product's currency differs from the cart's.
    """
    now = now or utcnow()

    async def attempt() -> Cart:
        async with session.begin():
            product = await _require_active_product(session, slug)
            cart = await _lock_or_create(session, user_id, now)
            line = await _line(session, cart.id, product.id)
            if line is None:
                await _check_currency(session, cart.id, product)
                session.add(CartItem(cart_id=cart.id, product_id=product.id, quantity=quantity))
            else:
                _check_line_quantity(line.quantity + quantity)
                line.quantity += quantity
            cart.updated_at = now
            await session.flush()
            return await _load_existing(session, user_id)

    # Two first adds of one user race to create the cart; on MariaDB the loser of
    # that race may deadlock with a third request and is run again.
    return await retry_on_deadlock(attempt)


async def set_quantity(
    session: AsyncSession, *, user_id: int, slug: str, quantity: int, now: datetime | None = None
) -> Cart:
    """Replace the quantity (1..MAX_LINE_QUANTITY, checked at the edge) of the product's
    line; NotFound when the product is unknown, inactive or not in the cart."""

    async def attempt() -> Cart:
        async with session.begin():
            product = await _require_active_product(session, slug)
            cart = await _lock(session, user_id)
            line = None if cart is None else await _line(session, cart.id, product.id)
            if cart is None or line is None:
                raise errors.NotFound()
            line.quantity = quantity
            cart.updated_at = now or utcnow()
            await session.flush()
            return await _load_existing(session, user_id)

    return await retry_on_deadlock(attempt)


async def remove_item(
    session: AsyncSession, *, user_id: int, slug: str, now: datetime | None = None
) -> Cart:
    """Remove the product's line (even for a product no longer sold); NotFound when
    the cart has no such line."""

    async def attempt() -> Cart:
        async with session.begin():
            cart = await _lock(session, user_id)
            line = None
            if cart is not None:
                line = await session.scalar(
                    select(CartItem)
                    .join(Product, CartItem.product_id == Product.id)
                    .where(CartItem.cart_id == cart.id, Product.slug == slug)
                )
            if cart is None or line is None:
                raise errors.NotFound()
            await session.delete(line)
            cart.updated_at = now or utcnow()
            await session.flush()
            return await _load_existing(session, user_id)

    return await retry_on_deadlock(attempt)


async def clear_cart(session: AsyncSession, *, user_id: int, now: datetime | None = None) -> None:
    """Empty the cart; a user without a cart has nothing to clear (no error)."""

    async def attempt() -> None:
        async with session.begin():
            cart = await _lock(session, user_id)
            if cart is not None:
                await session.execute(delete(CartItem).where(CartItem.cart_id == cart.id))
                cart.updated_at = now or utcnow()

    await retry_on_deadlock(attempt)


async def purge_inactive_carts(
    session: AsyncSession, *, inactive_days: int, now: datetime | None = None
) -> int:
    """Delete carts untouched for `inactive_days` (their items go with them).

    Returns how many carts went. Safe from several processes at once: a cart being
    changed right now has a fresh `updated_at` and no longer matches.
    """
    cutoff = (now or utcnow()) - timedelta(days=inactive_days)
    async with session.begin():
        purged = await session.execute(
            delete(Cart)
            .where(Cart.updated_at < cutoff)
            .execution_options(synchronize_session=False)
        )
    return int(purged.rowcount)  # type: ignore[attr-defined]


async def _require_active_product(session: AsyncSession, slug: str) -> Product:
    product = await session.scalar(
        select(Product).where(Product.slug == slug, Product.is_active.is_(True))
    )
    if product is None:
        raise errors.NotFound()
    return product


def _cart_of(user_id: int) -> Select[Cart]:
    return select(Cart).where(Cart.user_id == user_id)


async def _lock(session: AsyncSession, user_id: int) -> Cart | None:
    return await session.scalar(_cart_of(user_id).with_for_update())


async def _lock_or_create(session: AsyncSession, user_id: int, now: datetime) -> Cart:
    cart = await _lock(session, user_id)
    if cart is not None:
        return cart
    try:
        async with session.begin_nested():
            cart = Cart(user_id=user_id, created_at=now, updated_at=now)
            session.add(cart)
        return cart
    except IntegrityError:  # a concurrent request created it first: the unique index decided
        return (await session.scalars(_cart_of(user_id).with_for_update())).one()


async def _line(session: AsyncSession, cart_id: int, product_id: int) -> CartItem | None:
    return await session.scalar(
        select(CartItem).where(CartItem.cart_id == cart_id, CartItem.product_id == product_id)
    )


async def _check_currency(session: AsyncSession, cart_id: int, product: Product) -> None:
    """One currency per cart: an order is charged in one currency."""
    held = await session.scalar(
        select(Product.currency)
        .join(CartItem, CartItem.product_id == Product.id)
        .where(CartItem.cart_id == cart_id)
        .limit(1)
    )
    if held is not None and held != product.currency:
        raise errors.ValidationFailed(
            fields={"product": [FieldMessage(CART_MIXED_CURRENCY, currency=held)]}
        )


def _check_line_quantity(quantity: int) -> None:
    if quantity > MAX_LINE_QUANTITY:
        raise errors.ValidationFailed(
            fields={"quantity": [FieldMessage(CART_LINE_LIMIT, max=MAX_LINE_QUANTITY)]}
        )


def _with_items(user_id: int) -> Select[Cart]:
    # populate_existing: a cart changed earlier in this transaction is read afresh.
    return (
        _cart_of(user_id)
        .options(selectinload(Cart.items).selectinload(CartItem.product))
        .execution_options(populate_existing=True)
    )


async def _load(session: AsyncSession, user_id: int) -> Cart | None:
    return await session.scalar(_with_items(user_id))


async def _load_existing(session: AsyncSession, user_id: int) -> Cart:
    """The cart locked (or created) earlier in this transaction, with its items."""
    return (await session.scalars(_with_items(user_id))).one()
