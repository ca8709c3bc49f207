"""Expired-token purge (verification and refresh tokens)."""

from __future__ import annotations

from core.context import AppContext
from services.accounts import purge_expired_tokens


async def purge_tokens(ctx: AppContext) -> dict[str, int]:
    async with ctx.sessionmaker() as session:
        deleted = await purge_expired_tokens(session)
    return {"deleted": deleted}
