"""The reviews service: who may edit, and a rating that stays exact under concurrency."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from core.context import AppContext
from models.accounts import User
from models.catalog import Product, Review
from schemas.reviews import ReviewIn
from services.reviews import can_edit_review, create_review
from tests.catalog_factories import create_product


async def make_users(ctx: AppContext, count: int) -> list[User]:
    """Verified users straight in the table: no password hashing needed here."""
    users = [
        User(email=f"user{n}@example.com", password_hash="-", email_verified=True)
        for n in range(count)
    ]
    async with ctx.sessionmaker() as session, session.begin():
        session.add_all(users)
    return users


async def reviewed(ctx: AppContext, user: User, product: Product, rating: int) -> Review:
    async with ctx.sessionmaker() as session:
        return await create_review(
            session,
            publisher=ctx.after_commit,
            user=user,
            product_slug=product.slug,
            data=ReviewIn(rating=rating, title="Review"),
        )


async def stored_rating(ctx: AppContext, product: Product) -> tuple[Decimal | None, int]:
    async with ctx.sessionmaker() as session:
        stored = await session.get_one(Product, product.id)
        return stored.rating_avg, stored.rating_count


def test_only_the_author_and_staff_may_edit_a_review() -> None:
    author, stranger = User(id=1, is_staff=False), User(id=2, is_staff=False)
    staff = User(id=3, is_staff=True)
    written = Review(user_id=author.id)
    assert can_edit_review(author, written)
    assert can_edit_review(staff, written)
    assert not can_edit_review(stranger, written)


async def test_the_average_rounds_half_up_to_two_places(ctx: AppContext) -> None:
    product = await create_product(ctx)
    users = await make_users(ctx, 8)
    for user, rating in zip(users, [5, 5, 5, 5, 5, 4, 4, 4]):  # 37 / 8 = 4.625
        await reviewed(ctx, user, product, rating)
    assert await stored_rating(ctx, product) == (Decimal("4.63"), 8)


async def test_concurrent_reviews_of_one_product_all_count(ctx: AppContext) -> None:
    product = await create_product(ctx)
    users = await make_users(ctx, 6)
    ratings = [1, 2, 3, 4, 5, 5]
    await asyncio.gather(
        *(reviewed(ctx, user, product, rating) for user, rating in zip(users, ratings))
    )
    assert await stored_rating(ctx, product) == (Decimal("3.33"), 6)
