"""/api/v1/cart: the authenticated user's cart."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.endpoints import endpoint
from schemas.cart import CartItemIn, CartItemUpdate, CartOut
from services import cart


class CartHandler(BaseHandler):
    @endpoint("The cart at current prices", response=CartOut, auth="user")
    async def get(self) -> None:
        async with self.ctx.sessionmaker() as session:
            found = await cart.get_cart(session, user_id=self.require_user().id)
        self.write_json(CartOut.of(found))

    @endpoint("Empty the cart", status=204, auth="user")
    async def delete(self) -> None:
        async with self.ctx.sessionmaker() as session:
            await cart.clear_cart(session, user_id=self.require_user().id)
        self.no_content()


class CartItemsHandler(BaseHandler):
    @endpoint(
        "Add a product (to its line when the cart has one)",
        body=CartItemIn,
        response=CartOut,
        status=201,
        auth="user",
        errors=(400, 404),
    )
    async def post(self) -> None:
        data = self.parse_body(CartItemIn)
        async with self.ctx.sessionmaker() as session:
            changed = await cart.add_item(
                session, user_id=self.require_user().id, slug=data.product, quantity=data.quantity
            )
        self.write_json(CartOut.of(changed), status=201)


class CartItemHandler(BaseHandler):
    @endpoint(
        "Set the quantity of a product in the cart",
        body=CartItemUpdate,
        response=CartOut,
        auth="user",
        errors=(400, 404),
    )
    async def patch(self, slug: str) -> None:
        data = self.parse_body(CartItemUpdate)
        async with self.ctx.sessionmaker() as session:
            changed = await cart.set_quantity(
                session, user_id=self.require_user().id, slug=slug, quantity=data.quantity
            )
        self.write_json(CartOut.of(changed))

    @endpoint("Remove a product from the cart", response=CartOut, auth="user", errors=(404,))
    async def delete(self, slug: str) -> None:
        async with self.ctx.sessionmaker() as session:
            changed = await cart.remove_item(session, user_id=self.require_user().id, slug=slug)
        self.write_json(CartOut.of(changed))


routes = [
    (r"/api/v1/cart", CartHandler, "cart:detail"),
    (r"/api/v1/cart/items", CartItemsHandler, "cart:items"),
    (r"/api/v1/cart/items/(?P<slug>[^/]+)", CartItemHandler, "cart:item"),
]
