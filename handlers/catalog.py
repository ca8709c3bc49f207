"""/api/v1/categories and /api/v1/products: public (cached) reads, staff writes.

A list's page comes from the service as typed data (a count and its items' JSON array,
cached): the envelope around it is written here (`write_encoded_page`)."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.endpoints import endpoint
from schemas.catalog import (
    CategoryIn,
    CategoryOut,
    CategoryUpdate,
    ProductIn,
    ProductOut,
    ProductQuery,
    ProductUpdate,
)
from schemas.common import Page, PageParams
from services import catalog


def viewer_is_staff(handler: BaseHandler) -> bool:
    """Staff also see inactive products (shoppers get 404 for them)."""
    return handler.current_user is not None and bool(handler.current_user.is_staff)


class CategoriesHandler(BaseHandler):
    @endpoint("List categories", query=PageParams, response=Page[CategoryOut], errors=(400,))
    async def get(self) -> None:
        page = self.pagination()
        listing = await catalog.category_listing(
            self.ctx.sessionmaker, cache=self.ctx.cache, page=page
        )
        self.write_encoded_page(listing.results_json, count=listing.count, params=page)

    @endpoint(
        "Create a category",
        body=CategoryIn,
        response=CategoryOut,
        status=201,
        auth="staff",
        errors=(400, 409),
    )
    async def post(self) -> None:
        data = self.parse_body(CategoryIn)
        async with self.ctx.sessionmaker() as session:
            category = await catalog.create_category(
                session, publisher=self.ctx.after_commit, data=data
            )
        self.write_json(CategoryOut.model_validate(category), status=201)


class CategoryHandler(BaseHandler):
    @endpoint("A category", response=CategoryOut, errors=(404,))
    async def get(self, slug: str) -> None:
        detail = await catalog.category_detail(
            self.ctx.sessionmaker, cache=self.ctx.cache, slug=slug
        )
        self.write_encoded(detail)

    @endpoint(
        "Change a category",
        body=CategoryUpdate,
        response=CategoryOut,
        auth="staff",
        errors=(400, 404, 409),
    )
    async def patch(self, slug: str) -> None:
        changes = self.parse_body(CategoryUpdate)
        async with self.ctx.sessionmaker() as session:
            category = await catalog.update_category(
                session, publisher=self.ctx.after_commit, slug=slug, changes=changes
            )
        self.write_json(CategoryOut.model_validate(category))

    @endpoint(
        "Delete a category (its products stay, uncategorised)",
        status=204,
        auth="staff",
        errors=(404, 409),
    )
    async def delete(self, slug: str) -> None:
        async with self.ctx.sessionmaker() as session:
            await catalog.delete_category(session, publisher=self.ctx.after_commit, slug=slug)
        self.no_content()


class ProductsHandler(BaseHandler):
    @endpoint("List products", query=ProductQuery, response=Page[ProductOut], errors=(400,))
    async def get(self) -> None:
        query = self.parse_query(ProductQuery)
        page = self.pagination(query)
        listing = await catalog.product_listing(
            self.ctx.sessionmaker,
            cache=self.ctx.cache,
            query=query,
            page=page,
            include_inactive=viewer_is_staff(self),
        )
        self.write_encoded_page(listing.results_json, count=listing.count, params=page)

    @endpoint(
        "Create a product",
        body=ProductIn,
        response=ProductOut,
        status=201,
        auth="staff",
        errors=(400, 409),
    )
    async def post(self) -> None:
        data = self.parse_body(ProductIn)
        async with self.ctx.sessionmaker() as session:
            product = await catalog.create_product(
                session, publisher=self.ctx.after_commit, data=data
            )
        self.write_json(ProductOut.model_validate(product), status=201)


class ProductHandler(BaseHandler):
    @endpoint("A product", response=ProductOut, errors=(404,))
    async def get(self, slug: str) -> None:
        detail = await catalog.product_detail(
            self.ctx.sessionmaker,
            cache=self.ctx.cache,
            slug=slug,
            include_inactive=viewer_is_staff(self),
        )
        self.write_encoded(detail)

    @endpoint(
        "Change a product (stock included)",
        body=ProductUpdate,
        response=ProductOut,
        auth="staff",
        errors=(400, 404, 409),
    )
    async def patch(self, slug: str) -> None:
        changes = self.parse_body(ProductUpdate)
        async with self.ctx.sessionmaker() as session:
            product = await catalog.update_product(
                session, publisher=self.ctx.after_commit, slug=slug, changes=changes
            )
        self.write_json(ProductOut.model_validate(product))

    @endpoint("Delete a product", status=204, auth="staff", errors=(404,))
    async def delete(self, slug: str) -> None:
        async with self.ctx.sessionmaker() as session:
            await catalog.delete_product(session, publisher=self.ctx.after_commit, slug=slug)
        self.no_content()


SLUG = r"(?P<slug>[^/]+)"

routes = [
    (r"/api/v1/categories", CategoriesHandler, "catalog:categories"),
    (rf"/api/v1/categories/{SLUG}", CategoryHandler, "catalog:category"),
    (r"/api/v1/products", ProductsHandler, "catalog:products"),
    (rf"/api/v1/products/{SLUG}", ProductHandler, "catalog:product"),
]
