"""Slugs of catalog rows: unique, and made from the name when staff give none.

The unique index on `slug` has the last word on every clash: a look-up only says where
to start counting.
"""

from __future__ import annotations

import itertools

from slugify import slugify
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import errors
from core.messages import SLUG_TAKEN
from models.catalog import Category, Product

Sluggable = Category | Product
# Room for a "-NNN" suffix within the 120 characters of a slug column.
SLUG_BASE_LENGTH = 110
# Generated slugs retried after losing a race to a concurrent insert of the same one.
SLUG_ATTEMPTS = 5


async def flush_slug(session: AsyncSession) -> None:
    """Flush; the slug's unique index decides, and a clash is a Conflict on `slug`."""
    try:
        await session.flush()
    except IntegrityError as error:
        raise errors.Conflict(SLUG_TAKEN, fields={"slug": [SLUG_TAKEN]}) from error


async def insert_with_slug(
    session: AsyncSession, row: Sluggable, *, requested: str | None, name: str
) -> None:
    """Insert `row` under the `requested` slug, or under one made from `name`
    ("Brass Desk Lamp" -> brass-desk-lamp, then brass-desk-lamp-2, ...)."""
    if requested is not None:
        row.slug = requested
        session.add(row)
        await flush_slug(session)
        return
    model = type(row)
    base = slugify(name, max_length=SLUG_BASE_LENGTH, word_boundary=True) or "item"
    # Only a hint of where to start counting; the unique index has the last word.
    taken = set(
        await session.scalars(
            select(model.slug).where(or_(model.slug == base, model.slug.startswith(f"{base}-")))
        )
    )
    free = (
        candidate
        for candidate in (base if n == 1 else f"{base}-{n}" for n in itertools.count(1))
        if candidate not in taken
    )
    for _attempt, candidate in zip(range(SLUG_ATTEMPTS), free):
        row.slug = candidate
        try:
            async with session.begin_nested():
                session.add(row)
            return
        except IntegrityError:
            continue  # a concurrent insert took it since the look-up: try the next one
    raise errors.Conflict(SLUG_TAKEN, fields={"slug": [SLUG_TAKEN]})
