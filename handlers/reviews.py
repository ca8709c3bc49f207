"""Product reviews: public list, authenticated (throttled) writes."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.catalog import SLUG, viewer_is_staff
from handlers.endpoints import endpoint
from schemas.common import Page, PageParams
from schemas.reviews import ReviewIn, ReviewOut, ReviewUpdate
from services import reviews


class ProductReviewsHandler(BaseHandler):
    @endpoint(
        "List a product's reviews",
        query=PageParams,
        response=Page[ReviewOut],
        errors=(400, 404),
    )
    async def get(self, slug: str) -> None:
        page = self.pagination()
        async with self.ctx.sessionmaker() as session:
            rows, count = await reviews.review_page(
                session, product_slug=slug, page=page, include_inactive=viewer_is_staff(self)
            )
        self.write_page([ReviewOut.model_validate(r) for r in rows], count=count, params=page)

    @endpoint(
        "Review a product (once per user)",
        body=ReviewIn,
        response=ReviewOut,
        status=201,
        auth="user",
        errors=(400, 404, 409, 429),
    )
    async def post(self, slug: str) -> None:
        user = self.require_user()
        await self.ctx.limiter.hit(self.ctx.settings.review_rate_limit, "review", str(user.id))
        data = self.parse_body(ReviewIn)
        async with self.ctx.sessionmaker() as session:
            review = await reviews.create_review(
                session, publisher=self.ctx.after_commit, user=user, product_slug=slug, data=data
            )
        self.write_json(ReviewOut.model_validate(review), status=201)


class ReviewHandler(BaseHandler):
    @endpoint(
        "Change a review (author or staff)",
        body=ReviewUpdate,
        response=ReviewOut,
        auth="user",
        errors=(400, 403, 404),
    )
    async def patch(self, review_id: str) -> None:
        changes = self.parse_body(ReviewUpdate)
        async with self.ctx.sessionmaker() as session:
            review = await reviews.update_review(
                session,
                publisher=self.ctx.after_commit,
                user=self.require_user(),
                review_id=int(review_id),
                changes=changes,
            )
        self.write_json(ReviewOut.model_validate(review))

    @endpoint("Delete a review (author or staff)", status=204, auth="user", errors=(403, 404))
    async def delete(self, review_id: str) -> None:
        async with self.ctx.sessionmaker() as session:
            await reviews.delete_review(
                session,
                publisher=self.ctx.after_commit,
                user=self.require_user(),
                review_id=int(review_id),
            )
        self.no_content()


routes = [
    (rf"/api/v1/products/{SLUG}/reviews", ProductReviewsHandler, "catalog:product-reviews"),
    (r"/api/v1/reviews/(?P<review_id>[0-9]{1,18})", ReviewHandler, "catalog:review"),
]
