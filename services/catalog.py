"""Catalog: categories and products, and the cached responses that show them.

Reads go through the response cache (one group, CATALOG_CACHE_GROUP): a category or a
product as its encoded JSON body, a list as one page (`PageEntry`: the count and the
items' encoded JSON array), so that a hit is sent with nothing encoded again. The
handler owns a list's envelope (its links depend on the request's URL) and wraps the
page in it. Every write invalidates the group once its transaction has committed, so
the next read shows it.

A cached read takes the sessionmaker, not a session: it opens its session itself, and
only on a miss, so a hit (the hottest path of the service) costs none. The handler
stays one call; the service still owns all it does with the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.interfaces import ORMOption

from core import errors
from core.after_commit import CATALOG_CACHE_GROUP, AfterCommit
from core.cache import PAGES, PageEntry, ResponseCache
from core.messages import CATEGORY_IN_USE, CATEGORY_UNKNOWN, FieldMessage
from models.base import utcnow
from models.catalog import Category, Product
from schemas.catalog import (
    CategoryIn,
    CategoryOut,
    CategoryUpdate,
    ProductIn,
    ProductOut,
    ProductQuery,
    ProductUpdate,
)
from schemas.common import Pagination, encode_json
from services.inventory import stock_events
from services.slugs import flush_slug, insert_with_slug
from store.stock import StockLevel

ORDERINGS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "price": (Product.price_cents.asc(), Product.id.asc()),
    "-price": (Product.price_cents.desc(), Product.id.desc()),
    "name": (Product.name.asc(), Product.id.asc()),
    "-created": (Product.created_at.desc(), Product.id.desc()),
}
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]
# What a product's fields are called on the model, where it differs from the API.
PRODUCT_COLUMNS = {"price": "price_cents"}


def cache_key(resource: str, params: Mapping[str, object]) -> str:
    """The same key for the same request, whatever order the client sent its parameters in."""
    present = sorted((name, str(value)) for name, value in params.items() if value is not None)
    return f"{resource}?{urlencode(present)}"


async def fetch_page(
    session: AsyncSession, statement: Select[T], page: Pagination, *loaders: ORMOption
) -> tuple[list[T], int]:
    """One page of `statement` (filtered and ordered; `loaders` applied to the page
    only) and how many rows the whole statement has."""
    count = await session.scalar(
        select(func.count()).select_from(statement.order_by(None).subquery())
    )
    rows = await session.scalars(
        statement.options(*loaders).offset(page.offset).limit(page.page_size)
    )
    return list(rows), count or 0


# --- categories ------------------------------------------------------------------------


async def resolve_category(session: AsyncSession, slug: str | None) -> Category | None:
    """The category a write refers to by slug; None for null.

    Raises ValidationFailed (`fields.category`) for an unknown slug.
    """
    return None if slug is None else await _require_category(session, slug)


async def _require_category(session: AsyncSession, slug: str) -> Category:
    category = await session.scalar(select(Category).where(Category.slug == slug))
    if category is None:
        raise errors.ValidationFailed(fields={"category": [FieldMessage(CATEGORY_UNKNOWN)]})
    return category


async def category_listing(
    sessionmaker: Sessions, *, cache: ResponseCache, page: Pagination
) -> PageEntry:
    """Categories by name, one page, cached."""

    async def load() -> PageEntry:
        async with sessionmaker() as session:
            rows, count = await fetch_page(
                session, select(Category).order_by(Category.name, Category.id), page
            )
            results = [CategoryOut.model_validate(c) for c in rows]
        return PageEntry(count=count, results_json=encode_json(results))

    key = cache_key("categories", {"page": page.page, "page_size": page.page_size})
    return await cache.get_or_load(CATALOG_CACHE_GROUP, key, load, PAGES)


async def category_detail(sessionmaker: Sessions, *, cache: ResponseCache, slug: str) -> bytes:
    """The category as its encoded JSON response, cached. Raises NotFound (never cached)."""

    async def load() -> bytes:
        async with sessionmaker() as session:
            category = await session.scalar(select(Category).where(Category.slug == slug))
            if category is None:
                raise errors.NotFound()
            return encode_json(CategoryOut.model_validate(category))

    return await cache.get_or_load(CATALOG_CACHE_GROUP, cache_key("category", {"slug": slug}), load)


async def create_category(
    session: AsyncSession, *, publisher: AfterCommit, data: CategoryIn
) -> Category:
    """Raises Conflict when the given slug is taken (a generated one is made unique)."""
    category = Category(name=data.name)
    async with session.begin():
        await insert_with_slug(session, category, requested=data.slug, name=data.name)
    await publisher.catalog_changed()
    return category


async def update_category(
    session: AsyncSession, *, publisher: AfterCommit, slug: str, changes: CategoryUpdate
) -> Category:
    """Raises NotFound (unknown slug) or Conflict (new slug taken)."""
    async with session.begin():
        category = await session.scalar(select(Category).where(Category.slug == slug))
        if category is None:
            raise errors.NotFound()
        for name, value in changes.model_dump(exclude_unset=True).items():
            setattr(category, name, value)
        await flush_slug(session)
    await publisher.catalog_changed()
    return category


async def delete_category(session: AsyncSession, *, publisher: AfterCommit, slug: str) -> None:
    """Its products stay, without a category. Raises NotFound, or Conflict while a
    discount is limited to the category."""
    try:
        async with session.begin():
            deleted = await session.execute(delete(Category).where(Category.slug == slug))
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.NotFound()
    except IntegrityError as error:  # the discounts' foreign key is ON DELETE RESTRICT
        raise errors.Conflict(CATEGORY_IN_USE) from error
    await publisher.catalog_changed()


# --- products --------------------------------------------------------------------------


async def get_product(
    session: AsyncSession, *, slug: str, include_inactive: bool = False
) -> Product | None:
    """The product (category loaded); None when unknown, or inactive unless asked for."""
    product = await session.scalar(
        select(Product).options(joinedload(Product.category)).where(Product.slug == slug)
    )
    if product is None or not (product.is_active or include_inactive):
        return None
    return product


async def require_product(
    session: AsyncSession, *, slug: str, include_inactive: bool = False
) -> Product:
    """Like get_product, but raises NotFound instead of returning None."""
    product = await get_product(session, slug=slug, include_inactive=include_inactive)
    if product is None:
        raise errors.NotFound()
    return product


async def product_listing(
    sessionmaker: Sessions,
    *,
    cache: ResponseCache,
    query: ProductQuery,
    page: Pagination,
    include_inactive: bool,
) -> PageEntry:
    """One page of products matching `query`, cached per canonical query.

    Inactive products are left out unless `include_inactive` (staff). Raises
    ValidationFailed (`fields.category`) when the category filter names no category.
    """

    async def load() -> PageEntry:
        conditions: list[ColumnElement[bool]] = []
        if not include_inactive:
            conditions.append(Product.is_active.is_(True))
        if query.min_price is not None:
            conditions.append(Product.price_cents >= query.min_price)
        if query.max_price is not None:
            conditions.append(Product.price_cents <= query.max_price)
        if query.q is not None:
            conditions.append(Product.name.icontains(query.q, autoescape=True))
        async with sessionmaker() as session:
            if query.category is not None:
                category = await _require_category(session, query.category)
                conditions.append(Product.category_id == category.id)
            rows, count = await fetch_page(
                session,
                select(Product).where(*conditions).order_by(*ORDERINGS[query.ordering]),
                page,
                joinedload(Product.category),
            )
            results = [ProductOut.model_validate(p) for p in rows]
        return PageEntry(count=count, results_json=encode_json(results))

    params = query.model_dump(exclude={"page", "page_size"})
    params.update(page=page.page, page_size=page.page_size, inactive=include_inactive)
    key = cache_key("products", params)
    return await cache.get_or_load(CATALOG_CACHE_GROUP, key, load, PAGES)


async def product_detail(
    sessionmaker: Sessions, *, cache: ResponseCache, slug: str, include_inactive: bool
) -> bytes:
    """The product as its encoded JSON response, cached. Raises NotFound (never cached)."""

    async def load() -> bytes:
        async with sessionmaker() as session:
            product = await require_product(session, slug=slug, include_inactive=include_inactive)
            return encode_json(ProductOut.model_validate(product))

    key = cache_key("product", {"slug": slug, "inactive": include_inactive})
    return await cache.get_or_load(CATALOG_CACHE_GROUP, key, load)


async def create_product(
    session: AsyncSession, *, publisher: AfterCommit, data: ProductIn
) -> Product:
    """Raises ValidationFailed (unknown category) or Conflict (given slug taken)."""
    values = data.model_dump(exclude={"slug", "category", "price"})
    async with session.begin():
        product = Product(
            **values,
            price_cents=data.price,
            category=await resolve_category(session, data.category),
        )
        await insert_with_slug(session, product, requested=data.slug, name=data.name)
    await publisher.catalog_changed()
    return product


async def update_product(
    session: AsyncSession, *, publisher: AfterCommit, slug: str, changes: ProductUpdate
) -> Product:
    """Apply the fields that were sent. A changed stock is announced to inventory
    listeners. The slug only changes when sent (renaming keeps links working).

    Raises NotFound, ValidationFailed (unknown category) or Conflict (slug taken).
    """
    values = changes.model_dump(exclude_unset=True)
    async with session.begin():
        product = await require_product(session, slug=slug, include_inactive=True)
        if "category" in values:
            product.category = await resolve_category(session, values.pop("category"))
        for name, value in values.items():
            setattr(product, PRODUCT_COLUMNS.get(name, name), value)
        await flush_slug(session)
    if "stock" in values:
        level = StockLevel(slug=product.slug, stock=product.stock)
        await publisher.publish(stock_events([level], utcnow()))
    else:
        await publisher.catalog_changed()
    return product


async def delete_product(session: AsyncSession, *, publisher: AfterCommit, slug: str) -> None:
    """Its reviews and cart lines go with it; placed orders keep their snapshots.
    Raises NotFound."""
    async with session.begin():
        deleted = await session.execute(delete(Product).where(Product.slug == slug))
        if deleted.rowcount == 0:  # type: ignore[attr-defined]
            raise errors.NotFound()
    await publisher.catalog_changed()
