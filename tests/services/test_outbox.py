"""The outbox never loses a mail and never sends one twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.message import Message

import pytest
from sqlalchemy import select

from core.context import AppContext
from core.mail import SMTP_TIMEOUT, MailBackend, SmtpMailBackend
from models.base import utcnow
from models.mail import OutboxMessage
from services import outbox as outbox_service
from services.outbox import dispatch_due
from store.outbox import queue_mail
from tests.conftest import build_settings
from tests.smtp import SmtpServer, free_port


async def queue(ctx: AppContext, count: int = 1) -> None:
    async with ctx.transactions() as db:
        for number in range(count):
            await queue_mail(
                db,
                recipient=f"user{number}@example.com",
                subject="Hello",
                body="Body",
                now=utcnow(),
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


async def test_one_run_sends_every_due_mail_however_many_batches_it_takes(
    ctx: AppContext, smtp: SmtpServer
) -> None:
    await queue(ctx, count=outbox_service.BATCH_SIZE + 5)
    mailer = smtp_backend(ctx, smtp.port)
    result = await dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com")
    assert result.sent == outbox_service.BATCH_SIZE + 5
    assert len(smtp.messages) == outbox_service.BATCH_SIZE + 5
    assert all(message.sent_at is not None for message in await outbox(ctx))


class SlowMailer:
    """Takes `seconds` over every mail, then hands it to `mailer`."""

    def __init__(self, mailer: MailBackend, seconds: float) -> None:
        self.mailer, self.seconds = mailer, seconds

    async def send(self, message: Message) -> None:
        await asyncio.sleep(self.seconds)
        await self.mailer.send(message)


async def test_a_batch_that_would_outlast_its_claim_leaves_the_rest_unclaimed_for_the_next_run(
    ctx: AppContext, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sends of 0.4 s each: the second starts 0.4 s after the claim, within the room of
    # 0.75 s left before a send could outlast it (0.35 s of slack for a loaded machine);
    # the third starts at 0.8 s at the earliest, so it is always left.
    monkeypatch.setattr(outbox_service, "CLAIM_SECONDS", SMTP_TIMEOUT + 0.75)
    await queue(ctx, count=3)
    mailer = SlowMailer(smtp_backend(ctx, smtp.port), seconds=0.4)

    first = await dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com")
    assert first.sent == 2
    unsent = [message for message in await outbox(ctx) if message.sent_at is None]
    assert [message.claimed_until for message in unsent] == [None]

    second = await dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com")
    assert second.sent == 1
    assert sorted(str(m["To"]) for m in smtp.messages) == [f"user{n}@example.com" for n in range(3)]


async def test_with_smtp_down_a_run_stops_after_the_first_batch(ctx: AppContext) -> None:
    await queue(ctx, count=outbox_service.BATCH_SIZE + 5)
    mailer = smtp_backend(ctx, free_port())  # nothing listens there
    result = await dispatch_due(ctx.sessionmaker, mailer=mailer, sender="shop@example.com")
    assert (result.sent, result.failed) == (0, outbox_service.BATCH_SIZE)
    untried = [message for message in await outbox(ctx) if message.attempts == 0]
    assert len(untried) == 5
    assert all(message.claimed_until is None for message in untried)
