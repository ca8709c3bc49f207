"""/api/v1/orders: checkout, the user's orders, cancellation, payment and staff updates."""

from __future__ import annotations

from core import errors
from core.messages import IDEMPOTENCY_KEY_INVALID, FieldMessage
from handlers.base import BaseHandler
from handlers.endpoints import RequestHeader, endpoint
from schemas.common import Page
from schemas.orders import (
    OrderCreate,
    OrderEventOut,
    OrderOut,
    OrderQuery,
    OrderStatusUpdate,
    OrderTimelineOut,
    PayIn,
    PaymentOut,
)
from services import checkout, orders, payments

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255  # the column's size
IDEMPOTENCY_KEY = RequestHeader(
    IDEMPOTENCY_HEADER,
    "Any key of yours: the same key from the same user returns the first order with 200.",
    max_length=MAX_IDEMPOTENCY_KEY,
)


class OrdersHandler(BaseHandler):
    @endpoint(
        "Orders, newest first: the user's own, every order for staff",
        query=OrderQuery,
        response=Page[OrderOut],
        auth="user",
        errors=(400, 403),
    )
    async def get(self) -> None:
        filters = self.parse_query(OrderQuery)
        page = self.pagination()
        async with self.ctx.sessionmaker() as session:
            found, count = await orders.list_orders(
                session, viewer=self.require_user(), filters=filters, page=page
            )
        self.write_page([OrderOut.of(order) for order in found], count=count, params=page)

    @endpoint(
        "Order the cart (201; 200 with the earlier order when the Idempotency-Key was used)",
        body=OrderCreate,
        response=OrderOut,
        status=201,
        also=(200,),
        auth="user",
        user_read_by_service=True,
        errors=(400, 409),
        headers=(IDEMPOTENCY_KEY,),
    )
    async def post(self) -> None:
        data = self.parse_body(OrderCreate)
        placed = await checkout.create_order_from_cart(
            self.ctx.transactions,
            publisher=self.ctx.after_commit,
            user_id=self.require_claims().user_id,
            shipping_address=data.shipping_address.model_dump(),
            discount_code=data.discount_code,
            idempotency_key=self.idempotency_key(),
        )
        self.write_json(OrderOut.of(placed.order), status=201 if placed.created else 200)

    def idempotency_key(self) -> str | None:
        key = self.request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not 0 < len(key.strip()) <= MAX_IDEMPOTENCY_KEY:
            raise errors.ValidationFailed(
                fields={IDEMPOTENCY_HEADER: [FieldMessage(IDEMPOTENCY_KEY_INVALID)]}
            )
        return key.strip() if key is not None else None


class OrderHandler(BaseHandler):
    @endpoint("An order (own, or any for staff)", response=OrderOut, auth="user", errors=(404,))
    async def get(self, order_id: str) -> None:
        async with self.ctx.sessionmaker() as session:
            order = await orders.get_order(
                session, order_id=int(order_id), user=self.require_user()
            )
        self.write_json(OrderOut.of(order))


class OrderEventsHandler(BaseHandler):
    @endpoint("The order's status timeline", response=OrderTimelineOut, auth="user", errors=(404,))
    async def get(self, order_id: str) -> None:
        async with self.ctx.sessionmaker() as session:
            events = await orders.get_order_events(
                session, order_id=int(order_id), user=self.require_user()
            )
        self.write_json(OrderTimelineOut(results=[OrderEventOut.of(event) for event in events]))


class OrderCancelHandler(BaseHandler):
    @endpoint(
        "Cancel an order (idempotent; a paid order is refunded)",
        response=OrderOut,
        auth="user",
        errors=(404, 409),
    )
    async def post(self, order_id: str) -> None:
        async with self.ctx.sessionmaker() as session:
            order = await orders.cancel_order(
                session,
                publisher=self.ctx.after_commit,
                order_id=int(order_id),
                user=self.require_user(),
                refunds=self.ctx.payments,
            )
        self.write_json(OrderOut.of(order))


class OrderPayHandler(BaseHandler):
    @endpoint(
        "Start paying an order (a Stripe PaymentIntent; the fake backend pays at once)",
        body=PayIn,
        response=PaymentOut,
        auth="user",
        errors=(400, 404, 409, 503),
    )
    async def post(self, order_id: str) -> None:
        pay = self.parse_body(PayIn)
        async with self.ctx.sessionmaker() as session:
            payment = await payments.start_payment(
                session,
                publisher=self.ctx.after_commit,
                order_id=int(order_id),
                user=self.require_user(),
                gateway=self.ctx.payments,
                fake_outcome=pay.outcome,
            )
        self.write_json(
            PaymentOut(
                provider=payment.provider,
                client_secret=payment.client_secret,
                payment_intent_id=payment.payment_intent_id,
            )
        )


class OrderStatusHandler(BaseHandler):
    @endpoint(
        "Move a paid order along processing, shipped, delivered",
        body=OrderStatusUpdate,
        response=OrderOut,
        auth="staff",
        errors=(400, 404, 409),
    )
    async def patch(self, order_id: str) -> None:
        data = self.parse_body(OrderStatusUpdate)
        async with self.ctx.sessionmaker() as session:
            order = await orders.update_status(
                session,
                publisher=self.ctx.after_commit,
                order_id=int(order_id),
                status=data.status,
            )
        self.write_json(OrderOut.of(order))


# Up to 18 digits: every id fits a 64-bit integer; longer ones are simply unknown (404).
ORDER_ID = r"(?P<order_id>[0-9]{1,18})"

routes = [
    (r"/api/v1/orders", OrdersHandler, "orders:list"),
    (rf"/api/v1/orders/{ORDER_ID}", OrderHandler, "orders:detail"),
    (rf"/api/v1/orders/{ORDER_ID}/events", OrderEventsHandler, "orders:events"),
    (rf"/api/v1/orders/{ORDER_ID}/cancel", OrderCancelHandler, "orders:cancel"),
    (rf"/api/v1/orders/{ORDER_ID}/pay", OrderPayHandler, "orders:pay"),
    (rf"/api/v1/orders/{ORDER_ID}/status", OrderStatusHandler, "orders:status"),
]
