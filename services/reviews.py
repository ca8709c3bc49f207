"""Reviews: one per user and product; every write recomputes the product's rating.

The rating is recomputed from the reviews inside the writing transaction, after
locking the product row, so concurrent reviews of one product queue up and each
recomputation sees the others' committed rows. Checkout and staff edits lock that row
too, so every write is run again after a deadlock.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core import errors
from core.after_commit import AfterCommit
from core.db import retry_on_deadlock
from core.messages import REVIEW_EXISTS
from models.accounts import User
from models.catalog import Product, Review
from schemas.common import Pagination
from schemas.reviews import ReviewIn, ReviewUpdate
from services.catalog import fetch_page, require_product

RATING_PLACES = Decimal("0.01")


def can_edit_review(user: User, review: Review) -> bool:
    """The author and staff may change or delete a review."""
    return user.is_staff or review.user_id == user.id


async def review_page(
    session: AsyncSession, *, product_slug: str, page: Pagination, include_inactive: bool
) -> tuple[list[Review], int]:
    """One page of the product's reviews (newest first) and how many there are.

    Raises NotFound for an unknown product, or an inactive one unless `include_inactive`.
    """
    product = await require_product(session, slug=product_slug, include_inactive=include_inactive)
    return await fetch_page(
        session,
        select(Review)
        .where(Review.product_id == product.id)
        .order_by(Review.created_at.desc(), Review.id.desc()),
        page,
        joinedload(Review.author),
        joinedload(Review.product),
    )


async def create_review(
    session: AsyncSession, *, publisher: AfterCommit, user: User, product_slug: str, data: ReviewIn
) -> Review:
    """Raises NotFound (unknown product; inactive unless staff) or Conflict (the user
    has reviewed this product already)."""

    async def attempt() -> Review:
        async with session.begin():
            product = await require_product(
                session, slug=product_slug, include_inactive=user.is_staff
            )
            await _lock_product(session, product.id)
            review = Review(product=product, user_id=user.id, **data.model_dump())
            session.add(review)
            await session.flush()  # the (product, user) unique index decides
            await _recompute_rating(session, product.id)
            await session.refresh(review, ["author"])
            return review

    try:
        review = await retry_on_deadlock(attempt)
    except IntegrityError as error:
        raise errors.Conflict(REVIEW_EXISTS) from error
    await publisher.catalog_changed()
    return review


async def update_review(
    session: AsyncSession,
    *,
    publisher: AfterCommit,
    user: User,
    review_id: int,
    changes: ReviewUpdate,
) -> Review:
    """Apply the fields that were sent. Raises NotFound or PermissionDenied
    (neither the author nor staff)."""

    async def attempt() -> Review:
        async with session.begin():
            review = await _editable_review(session, user, review_id)
            for name, value in changes.model_dump(exclude_unset=True).items():
                setattr(review, name, value)
            await session.flush()
            await _recompute_rating(session, review.product_id)
            return review

    review = await retry_on_deadlock(attempt)
    await publisher.catalog_changed()
    return review


async def delete_review(
    session: AsyncSession, *, publisher: AfterCommit, user: User, review_id: int
) -> None:
    """Raises NotFound or PermissionDenied (neither the author nor staff)."""

    async def attempt() -> None:
        async with session.begin():
            review = await _editable_review(session, user, review_id)
            await session.delete(review)
            await session.flush()
            await _recompute_rating(session, review.product_id)

    await retry_on_deadlock(attempt)
    await publisher.catalog_changed()


async def _editable_review(session: AsyncSession, user: User, review_id: int) -> Review:
    """The review, its product row locked; NotFound or PermissionDenied."""
    review = await session.scalar(
        select(Review)
        .options(joinedload(Review.author), joinedload(Review.product))
        .where(Review.id == review_id)
    )
    if review is None:
        raise errors.NotFound()
    # Reviews are public, so a 404 would hide nothing: say plainly it is not yours.
    if not can_edit_review(user, review):
        raise errors.PermissionDenied()
    await _lock_product(session, review.product_id)
    return review


async def _lock_product(session: AsyncSession, product_id: int) -> None:
    """Row lock on MariaDB; SQLite already serialises writers (BEGIN IMMEDIATE)."""
    await session.execute(select(Product.id).where(Product.id == product_id).with_for_update())


async def _recompute_rating(session: AsyncSession, product_id: int) -> None:
    """rating_count and rating_avg (mean rounded half up to 0.01; null without reviews)."""
    count, total = (
        await session.execute(
            select(func.count(Review.id), func.coalesce(func.sum(Review.rating), 0)).where(
                Review.product_id == product_id
            )
        )
    ).one()
    average = (Decimal(total) / count).quantize(RATING_PLACES, ROUND_HALF_UP) if count else None
    await session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(rating_count=count, rating_avg=average)
    )
