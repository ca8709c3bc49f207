"""Queueing a mail in the outbox, inside the business transaction that causes it (the
dispatcher in services/outbox.py sends it after commit)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from core.direct import Direct, Statement
from models.base import table_of
from models.mail import OutboxMessage

_ADD_MESSAGE = Statement(insert(table_of(OutboxMessage)))


async def queue_mail(db: Direct, *, recipient: str, subject: str, body: str, now: datetime) -> None:
    """Add a message to the outbox, due at once."""
    await db.insert(
        _ADD_MESSAGE,
        {
            "recipient": recipient,
            "subject": subject,
            "body": body,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        },
    )
