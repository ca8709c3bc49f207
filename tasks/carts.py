"""Inactive-cart purge: carts untouched for CART_INACTIVE_DAYS go."""

from __future__ import annotations

from core.context import AppContext
from services.cart import purge_inactive_carts


async def purge_carts(ctx: AppContext) -> dict[str, int]:
    async with ctx.sessionmaker() as session:
        deleted = await purge_inactive_carts(session, inactive_days=ctx.settings.cart_inactive_days)
    return {"deleted": deleted}
