"""The mail outbox's dispatcher: what store/outbox.py queued inside a business
transaction is sent from a task.

Delivery is at-least-once and never lossy: a message leaves the queue only once its
send succeeded. A dispatcher claims a batch of rows in one transaction (locked while it
claims them), so several processes dispatching at once never send the same message
twice, and it marks the batch sent with one statement.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.mail import SMTP_TIMEOUT, MailBackend, build_message
from core.metrics import Metrics
from models.base import utcnow
from models.mail import OutboxMessage

log = structlog.get_logger(__name__)

BATCH_SIZE = 50
# How long a dispatcher owns what it claimed. A send is bounded by SMTP_TIMEOUT, and no
# send starts that could outlast the claim, so the claim always outlives the sends.
CLAIM_SECONDS = 120
MAX_BACKOFF_SECONDS = 3600


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
    """Send every message due at `now`, a batch at a time, so that a busy shop's mail
    never falls behind; failures are re-queued with backoff. A batch with a failed send
    ends the run: the mail server is likely down, and the next run tries again."""
    now = now or utcnow()
    result = DispatchResult()
    while True:
        batch = await _claim_due(sessionmaker, now)
        failed_before = result.failed
        finished = await _send_batch(sessionmaker, batch, mailer, sender, metrics, result)
        if not finished or result.failed > failed_before or len(batch) < BATCH_SIZE:
            return result


async def _send_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    batch: Sequence[OutboxMessage],
    mailer: MailBackend,
    sender: str,
    metrics: Metrics | None,
    result: DispatchResult,
) -> bool:
    """Send the claimed `batch`; False when it stopped early because the claim would
    have run out (what is left is released for the next run)."""
    claimed_at = time.monotonic()
    sent: list[int] = []
    finished = True
    for position, message in enumerate(batch):
        if time.monotonic() - claimed_at + SMTP_TIMEOUT >= CLAIM_SECONDS:
            await _release(sessionmaker, [later.id for later in batch[position:]])
            finished = False
            break
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
        sent.append(message.id)
        log.info("mail_sent", outbox_id=message.id, attempts=message.attempts + 1)
    await _mark_sent(sessionmaker, sent)
    result.sent += len(sent)
    if metrics:
        metrics.mail_sent.inc(len(sent))
    return finished


async def _claim_due(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> list[OutboxMessage]:
    """Up to BATCH_SIZE due messages, claimed for this dispatcher.

    The rows are read FOR UPDATE: another dispatcher reading them at the same time waits
    for this claim to commit, then finds them claimed and takes the next ones. (SQLite
    has one writer at a time, which gives the same.)
    """
    claimable = or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now)
    due_rows = (
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= now, claimable)
        .order_by(OutboxMessage.id)
        .limit(BATCH_SIZE)
        .with_for_update()
    )
    async with sessionmaker() as session, session.begin():
        due = list((await session.scalars(due_rows)).all())
        claimed_until = now + timedelta(seconds=CLAIM_SECONDS)
        await _update(session, [message.id for message in due], claimed_until=claimed_until)
        return due


async def _mark_sent(sessionmaker: async_sessionmaker[AsyncSession], ids: list[int]) -> None:
    async with sessionmaker() as session, session.begin():
        await _update(session, ids, sent_at=utcnow(), next_attempt_at=None, claimed_until=None)


async def _release(sessionmaker: async_sessionmaker[AsyncSession], ids: list[int]) -> None:
    """Give claimed messages back unsent, for the next run to take."""
    async with sessionmaker() as session, session.begin():
        await _update(session, ids, claimed_until=None)


async def _update(session: AsyncSession, ids: list[int], **values: Any) -> None:
    """Set `values` on the messages `ids` with one statement (no statement for none; the
    session then never takes a connection)."""
    if ids:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


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
