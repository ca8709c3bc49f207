"""Unpaid-order expiry: orders still unpaid after ORDER_PAYMENT_TIMEOUT release their stock."""

from __future__ import annotations

from core.context import AppContext
from services.orders import expire_unpaid_orders


async def expire_orders(ctx: AppContext) -> dict[str, int]:
    async with ctx.sessionmaker() as session:
        expired = await expire_unpaid_orders(
            session,
            publisher=ctx.after_commit,
            timeout_seconds=ctx.settings.order_payment_timeout,
        )
    return {"expired": expired}
