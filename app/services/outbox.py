"""The mail outbox: queue inside a business transaction, dispatch from a task.

Delivery is at-least-once and never lossy: a message leaves the queue only once its
send succeeded. A dispatcher first claims a row with a guarded UPDATE, so several
processes dispatching at once never send the same message twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.mail import MailBackend, build_message
from app.metrics import Metrics
from models.base import table_of, utcnow
from models.mail import OutboxMessage

log = structlog.get_logger(__name__)

BATCH_SIZE = 50
# Longer than any SMTP exchange: a claim outlives the send it protects.
CLAIM_SECONDS = 120
MAX_BACKOFF_SECONDS = 3600
_ADD_MESSAGE = insert(table_of(OutboxMessage))


async def queue_mail(session: AsyncSession, *, recipient: str, subject: str, body: str) -> None:
    """Add a message to the outbox as part of the caller's transaction."""
    now = utcnow()
    # A plain INSERT: nothing reads the row back, so it skips the session's unit of work.
    await session.execute(
        _ADD_MESSAGE,
        {
            "recipient": recipient,
            "subject": subject,
            "body": body,
            "created_at": now,
            "next_attempt_at": now,
        },
    )


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 10 s, 20 s, 40 s ... capped at an hour."""
    return timedelta(seconds=min(5 * 2**attempts, MAX_BACKOFF_SECONDS))


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0


async def dispatch_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    mailer: MailBackend,
    sender: str,
    metrics: Metrics | None = None,
    now: datetime | None = None,
) -> DispatchResult:
    """Send every message that is due; failures are re-queued with backoff."""
    result = DispatchResult()
    for message in await _claim_due(sessionmaker, now or utcnow()):
        try:
            await mailer.send(
                build_message(
                    sender=sender,
                    recipient=message.recipient,
                    subject=message.subject,
                    body=message.body,
                )
            )
        except Exception as error:  # any failure: keep it queued and try later
            await _mark_failed(sessionmaker, message, error)
            result.failed += 1
            if metrics:
                metrics.mail_failed.inc()
            continue
        await _mark_sent(sessionmaker, message)
        result.sent += 1
        if metrics:
            metrics.mail_sent.inc()
    return result


async def _claim_due(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> list[OutboxMessage]:
    claimable = or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now)
    async with sessionmaker() as session, session.begin():
        due = await session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.next_attempt_at <= now,
                claimable,
            )
            .order_by(OutboxMessage.id)
            .limit(BATCH_SIZE)
        )
        claimed = []
        for message in due.all():
            outcome = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id, OutboxMessage.sent_at.is_(None), claimable)
                .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
                .execution_options(synchronize_session=False)
            )
            if outcome.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(message)
        return claimed


async def _mark_sent(
    sessionmaker: async_sessionmaker[AsyncSession], message: OutboxMessage
) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id)
            .values(sent_at=utcnow(), next_attempt_at=None, claimed_until=None)
        )
    log.info("mail_sent", outbox_id=message.id, attempts=message.attempts + 1)


async def _mark_failed(
    sessionmaker: async_sessionmaker[AsyncSession], message: OutboxMessage, error: Exception
) -> None:
    attempts = message.attempts + 1
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id)
            .values(
                attempts=attempts,
                next_attempt_at=utcnow() + retry_delay(attempts),
                claimed_until=None,
                last_error=f"{type(error).__name__}: {error}"[:500],
            )
        )
    log.warning("mail_send_failed", outbox_id=message.id, attempts=attempts, error=str(error))
