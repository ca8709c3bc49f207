"""Mail backends: `console` logs each message, `smtp` sends it with aiosmtplib.

Mail is never sent from a request: services queue it in the outbox (see
app/services/outbox.py) and the dispatcher task hands it to one of these backends.
"""

from __future__ import annotations

import sys
from email.message import EmailMessage
from typing import Protocol, TextIO

import aiosmtplib
import structlog

from app.config import Settings

log = structlog.get_logger(__name__)
SMTP_TIMEOUT = 30


class MailBackend(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver `message` or raise; a raise leaves it queued for a retry."""
        ...


class ConsoleMailBackend:
    """Development backend: the whole mail goes to stderr, like Django's console backend.

    The body is kept out of the structured log: it carries tokens.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def send(self, message: EmailMessage) -> None:
        stream = self.stream or sys.stderr
        stream.write(f"{message.as_string()}\n{'-' * 72}\n")
        stream.flush()
        log.info("mail_console", to=message["To"], subject=message["Subject"])


class SmtpMailBackend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=SMTP_TIMEOUT,
        )


def make_mail_backend(settings: Settings) -> MailBackend:
    if settings.email_backend == "smtp":
        return SmtpMailBackend(settings)
    return ConsoleMailBackend()


def build_message(*, sender: str, recipient: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content(body)
    return message
