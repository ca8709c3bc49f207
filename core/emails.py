"""Mail templates. Subjects and bodies are msgids, rendered in the recipient's language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tornado.locale

from core.errors import N_
from core.i18n import translate


@dataclass(frozen=True)
class MailTemplate:
    subject: str
    body: str

    def render(self, language: str, **params: Any) -> tuple[str, str]:
        """(subject, body) translated into `language` and filled from `params`."""
        locale = tornado.locale.get(language)
        return translate(locale, self.subject, params), translate(locale, self.body, params)


VERIFY_EMAIL = MailTemplate(
    subject=N_("Confirm your email address"),
    body=N_(
        "Hello {name},\n\n"
        "Confirm your email address with this code:\n\n{token}\n\n"
        'Send it to POST /api/v1/auth/verify-email as {{"token": "..."}}. '
        "The code expires in {hours} hours.\n"
    ),
)

ORDER_CONFIRMATION = MailTemplate(
    subject=N_("We received your order #{order_id}"),
    body=N_(
        "Hello {name},\n\n"
        "Thank you for your order #{order_id}. It is reserved for you until it is paid.\n\n"
        "{items}\n\n"
        "Subtotal: {subtotal}\n"
        "Discount: {discount}\n"
        "Total: {total}\n\n"
        "Shipping to:\n{address}\n"
    ),
)
