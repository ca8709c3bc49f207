"""The outbox never loses a mail and never sends one twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from app.context import AppContext
from app.mail import SmtpMailBackend
from app.services.outbox import dispatch_due, queue_mail
from models.base import utcnow
from models.mail import OutboxMessage
from tests.conftest import build_settings
from tests.smtp import SmtpServer, free_port


async def queue(ctx: AppContext, count: int = 1) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        for number in range(count):
            await queue_mail(
                session, recipient=f"user{number}@example.com", subject="Hello", body="Body"
            )


async def outbox(ctx: AppContext) -> list[OutboxMessage]:
    async with ctx.sessionmaker() as session:
        return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


def smtp_backend(ctx: AppContext, port: int) -> SmtpMailBackend:
    overrides = {"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port}
    return SmtpMailBackend(build_settings(ctx.settings.database_url, overrides))


async def test_a_queued_mail_is_sent_once(ctx: AppContext, smtp: SmtpServer) -> None:
    await queue(ctx)
    mailer = smtp_backend(ctx, smtp.port)
    first = await dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com")
    second = await dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com")
    assert (first.sent, second.sent) == (1, 0)
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["From"] == "shop@example.com"
    [message] = await outbox(ctx)
    assert message.sent_at is not None


async def test_with_smtp_down_the_mail_stays_queued_and_goes_out_once_smtp_is_back(
    ctx: AppContext,
) -> None:
    port = free_port()  # nothing listens there yet
    mailer = smtp_backend(ctx, port)
    await queue(ctx)

    failed = await dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com")
    assert (failed.sent, failed.failed) == (0, 1)
    [message] = await outbox(ctx)
    assert message.sent_at is None
    assert message.attempts == 1
    assert message.last_error
    assert message.next_attempt_at is not None and message.next_attempt_at > utcnow()

    server = SmtpServer(port)
    server.start()
    try:
        # Not due yet: the backoff holds it back even though SMTP is up again.
        early = await dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com")
        assert early.sent == 0
        later = utcnow() + timedelta(minutes=5)
        sent = await dispatch_due(
            ctx.sessionmaker, mailer=mailer, sender="shop@example.com", now=later
        )
        assert sent.sent == 1
        assert len(server.messages) == 1
    finally:
        server.stop()
    [message] = await outbox(ctx)
    assert message.sent_at is not None


async def test_two_dispatchers_at_once_send_each_mail_exactly_once(
    ctx: AppContext, smtp: SmtpServer
) -> None:
    await queue(ctx, count=10)
    mailer = smtp_backend(ctx, smtp.port)
    results = await asyncio.gather(
        dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com"),
        dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com"),
    )
    assert sum(result.sent for result in results) == 10
    assert sorted(str(m["To"]) for m in smtp.messages) == sorted(
        f"user{n}@example.com" for n in range(10)
    )
