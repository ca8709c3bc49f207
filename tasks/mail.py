"""Outbox dispatch: hand due mail to the configured backend."""

from __future__ import annotations

from core.context import AppContext
from services.outbox import dispatch_due


async def send_mail(ctx: AppContext) -> dict[str, int]:
    result = await dispatch_due(
        ctx.sessionmaker,
        mailer=ctx.mailer,
        sender=ctx.settings.default_from_email,
        metrics=ctx.metrics,
    )
    return {"sent": result.sent, "failed": result.failed}
