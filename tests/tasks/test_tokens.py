"""The expired-token purge task."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update

from core.context import AppContext
from models.accounts import EmailVerificationToken, RefreshToken
from models.base import utcnow
from tasks.tokens import purge_tokens
from tests.client import ApiClient
from tests.factories import count_rows, create_user, log_in


async def test_purge_removes_used_and_expired_tokens_and_keeps_live_ones(
    client: ApiClient, ctx: AppContext
) -> None:
    await log_in(client, ctx, "ada@example.com")  # a used verification token, a live refresh
    await create_user(ctx, "bob@example.com", verified=False)  # a live verification token
    stale = await log_in(client, ctx, "cy@example.com")
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == stale.user.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    assert await purge_tokens(ctx) == {"deleted": 3}
    assert await count_rows(ctx, EmailVerificationToken) == 1
    assert await count_rows(ctx, RefreshToken) == 1
    assert await purge_tokens(ctx) == {"deleted": 0}


async def test_two_purges_at_once_delete_each_row_once(client: ApiClient, ctx: AppContext) -> None:
    for name in ("ada", "bob", "cy"):
        await log_in(client, ctx, f"{name}@example.com")
    results = await asyncio.gather(purge_tokens(ctx), purge_tokens(ctx))
    assert sum(result["deleted"] for result in results) == 3
    assert await count_rows(ctx, EmailVerificationToken) == 0
