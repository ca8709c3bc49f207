"""The order confirmation mail, delivered through the outbox to a real SMTP server."""

from __future__ import annotations

from sqlalchemy import select, update

from core.context import AppContext
from core.mail import SmtpMailBackend
from models.base import utcnow
from models.mail import OutboxMessage
from tasks.mail import send_mail
from tests.client import ApiClient
from tests.conftest import build_settings
from tests.order_factories import add_product, ordered, shopper
from tests.smtp import SmtpServer, free_port


async def outbox(ctx: AppContext) -> list[OutboxMessage]:
    async with ctx.sessionmaker() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


async def test_the_confirmation_mail_reaches_the_smtp_server_once(
    client: ApiClient, ctx: AppContext, smtp: SmtpServer
) -> None:
    await add_product(ctx, "brass-lamp", price_cents=1999)
    buyer = await shopper(ctx)
    order = await ordered(client, buyer.token, {"brass-lamp": 2})

    assert await send_mail(ctx) == {"sent": 1, "failed": 0}
    assert await send_mail(ctx) == {"sent": 0, "failed": 0}

    [mail] = smtp.messages
    assert mail["To"] == buyer.user.email
    assert mail["Subject"] == f"We received your order #{order['id']}"
    part = mail.get_body()
    assert part is not None
    body = part.get_content()
    assert "2 x Brass Lamp: 39.98 USD" in body
    assert "Total: 39.98 USD" in body


async def test_with_smtp_down_the_confirmation_stays_queued_and_goes_out_once_it_is_back(
    client: ApiClient, ctx: AppContext
) -> None:
    port = free_port()  # nothing listens there yet
    smtp_settings = {"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port}
    ctx.mailer = SmtpMailBackend(build_settings(ctx.settings.database_url, smtp_settings))
    await add_product(ctx)
    buyer = await shopper(ctx)
    order = await ordered(client, buyer.token, {"brass-lamp": 1})

    assert await send_mail(ctx) == {"sent": 0, "failed": 1}
    [queued] = await outbox(ctx)
    assert queued.sent_at is None and queued.attempts == 1

    server = SmtpServer(port)
    server.start()
    try:
        async with ctx.sessionmaker() as session, session.begin():  # the backoff has passed
            await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
        assert await send_mail(ctx) == {"sent": 1, "failed": 0}
        assert await send_mail(ctx) == {"sent": 0, "failed": 0}
        [mail] = server.messages
        assert mail["Subject"] == f"We received your order #{order['id']}"
    finally:
        server.stop()
    [sent] = await outbox(ctx)
    assert sent.sent_at is not None
