"""Mail backends: `console` logs each message, `smtp` sends it with aiosmtplib.

Mail is never sent from a request: services queue it in the outbox (see
services/outbox.py) and the dispatcher task hands it to one of these backends.
"""

from __future__ import annotations

import sys
from email.charset import QP, Charset
from email.header import Header, decode_header, make_header
from email.message import Message
from typing import Protocol, TextIO, cast

import aiosmtplib
import structlog

from core.config import Settings

log = structlog.get_logger(__name__)
SMTP_TIMEOUT = 30


class MailBackend(Protocol):
    async def send(self, message: Message) -> None:
        """Deliver `message` or raise; a raise leaves it queued for a retry."""
        ...


class ConsoleMailBackend:
    """Development backend: the mail goes to stderr, like Django's console backend, as
    text to read (headers and body decoded) rather than its encoded form.

    The body is kept out of the structured log: it carries tokens.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def send(self, message: Message) -> None:
        stream = self.stream or sys.stderr
        headers = "".join(
            f"{name}: {header_text(message, name)}\n" for name in ("From", "To", "Subject")
        )
        # build_message makes a single text part: its payload decodes to bytes.
        payload = cast(bytes, message.get_payload(decode=True))
        body = payload.decode(message.get_content_charset() or "utf-8")
        stream.write(f"{headers}\n{body}\n{'-' * 72}\n")
        stream.flush()
        log.info(
            "mail_console", to=header_text(message, "To"), subject=header_text(message, "Subject")
        )


class SmtpMailBackend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: Message) -> None:
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


# Quoted-printable: readable where it is ASCII (codes, links), safe for any SMTP server.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


def build_message(*, sender: str, recipient: str, subject: str, body: str) -> Message:
    """A text/plain UTF-8 mail.

    Built the compat32 way (headers set as given, the body encoded once): EmailMessage
    parses every header it is given and cost about 0.8 ms a mail, which a busy
    dispatcher felt.
    """
    message = Message()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject if subject.isascii() else Header(subject, _UTF8).encode()
    message.set_payload(body, _UTF8)  # also its MIME-Version and Content-* headers
    return message


def header_text(message: Message, name: str) -> str:
    """Header `name` of `message` decoded (an encoded-word subject becomes text)."""
    return str(make_header(decode_header(message[name])))
