"""gettext catalogs from locale/<lang>/LC_MESSAGES/shop.mo, used through tornado.locale."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tornado.locale

DOMAIN = "shop"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DEFAULT_LOCALE = "en_US"


def load_translations() -> None:
    """Load the compiled catalogs (tornado keeps them in its own registry)."""
    tornado.locale.set_default_locale(DEFAULT_LOCALE)
    tornado.locale.load_gettext_translations(str(LOCALE_DIR), DOMAIN)


def translate(
    locale: tornado.locale.Locale, msgid: str, params: Mapping[str, Any] | None = None
) -> str:
    """Translate `msgid` and fill its `{placeholders}` from `params`."""
    text = locale.translate(msgid)
    return text.format(**params) if params else text
