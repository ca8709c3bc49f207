"""The shipped catalogs are complete: every message has a Spanish and a German text."""

from __future__ import annotations

import string
from pathlib import Path
from typing import cast

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from core.i18n import LOCALE_DIR


def source_msgids() -> set[str]:
    """Every message marked in the code, extracted the way `make messages` does."""
    found = set()
    for folder in ("app", "handlers", "tasks"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            LOCALE_DIR.parent / folder, method_map=[("**.py", "python")]
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", ["es", "de"])
def test_every_message_is_translated_with_the_same_placeholders(language: str) -> None:
    with Path(LOCALE_DIR, "shop.pot").open("rb") as template_file:
        template = read_po(template_file)
    with Path(LOCALE_DIR, language, "LC_MESSAGES", "shop.po").open("rb") as catalog_file:
        catalog = read_po(catalog_file)
    msgids = [message.id for message in template if message.id]
    missing = source_msgids() - set(msgids)
    assert not missing, f"run `make messages`: not in locale/shop.pot: {sorted(missing)}"
    for msgid in msgids:
        translation = catalog.get(msgid)
        assert translation is not None and translation.string, f"untranslated: {msgid!r}"
        assert not translation.fuzzy, f"fuzzy: {msgid!r}"
        assert placeholders(cast(str, translation.string)) == placeholders(cast(str, msgid)), msgid
