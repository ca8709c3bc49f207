"""/api/v1/discounts: staff manage discount codes (checkout applies them)."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.endpoints import endpoint
from schemas.common import Page, PageParams
from schemas.discounts import DiscountIn, DiscountOut, DiscountUpdate
from services import discounts


class DiscountsHandler(BaseHandler):
    @endpoint(
        "List discounts",
        query=PageParams,
        response=Page[DiscountOut],
        auth="staff",
        errors=(400,),
    )
    async def get(self) -> None:
        page = self.pagination()
        async with self.ctx.sessionmaker() as session:
            rows, count = await discounts.discount_page(session, page=page)
        self.write_page([DiscountOut.model_validate(d) for d in rows], count=count, params=page)

    @endpoint(
        "Create a discount",
        body=DiscountIn,
        response=DiscountOut,
        status=201,
        auth="staff",
        errors=(400, 409),
    )
    async def post(self) -> None:
        data = self.parse_body(DiscountIn)
        async with self.ctx.sessionmaker() as session:
            discount = await discounts.create_discount(session, data=data)
        self.write_json(DiscountOut.model_validate(discount), status=201)


class DiscountHandler(BaseHandler):
    @endpoint("A discount", response=DiscountOut, auth="staff", errors=(404,))
    async def get(self, discount_id: str) -> None:
        async with self.ctx.sessionmaker() as session:
            discount = await discounts.require_discount(session, discount_id=int(discount_id))
        self.write_json(DiscountOut.model_validate(discount))

    @endpoint(
        "Change a discount",
        body=DiscountUpdate,
        response=DiscountOut,
        auth="staff",
        errors=(400, 404, 409),
    )
    async def patch(self, discount_id: str) -> None:
        changes = self.parse_body(DiscountUpdate)
        async with self.ctx.sessionmaker() as session:
            discount = await discounts.update_discount(
                session, discount_id=int(discount_id), changes=changes
            )
        self.write_json(DiscountOut.model_validate(discount))

    @endpoint("Delete a discount", status=204, auth="staff", errors=(404,))
    async def delete(self, discount_id: str) -> None:
        async with self.ctx.sessionmaker() as session:
            await discounts.delete_discount(session, discount_id=int(discount_id))
        self.no_content()


routes = [
    (r"/api/v1/discounts", DiscountsHandler, "catalog:discounts"),
    # At most 18 digits: any id fits a 64-bit integer; a longer one is simply unknown (404).
    (r"/api/v1/discounts/(?P<discount_id>[0-9]{1,18})", DiscountHandler, "catalog:discount"),
]
