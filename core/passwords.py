"""Password rules equivalent to Django's default AUTH_PASSWORD_VALIDATORS.

Minimum length, not too similar to the email, not in the 20,000-entry common
password list that Django ships (core/data/common-passwords.txt.gz, see NOTICE),
not entirely numeric.
"""

from __future__ import annotations

import gzip
import re
from difflib import SequenceMatcher
from functools import cache
from pathlib import Path

from core.messages import (
    PASSWORD_ENTIRELY_NUMERIC,
    PASSWORD_TOO_COMMON,
    PASSWORD_TOO_SHORT,
    PASSWORD_TOO_SIMILAR,
    FieldMessage,
)

MIN_LENGTH = 10
MAX_SIMILARITY = 0.7
COMMON_PASSWORDS_FILE = Path(__file__).with_name("data") / "common-passwords.txt.gz"


@cache
def _common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines)


def _too_similar(password: str, attribute_value: str) -> bool:
    """Django's UserAttributeSimilarityValidator: compare with the whole value and
    with each of its parts split on non-word characters."""
    password = password.lower()
    value = attribute_value.lower()
    for part in [*re.split(r"\W+", value), value]:
        if len(part) < 3:
            continue
        # Cheap upper bound first, as Django does, before the full ratio.
        if SequenceMatcher(a=password, b=part).quick_ratio() < MAX_SIMILARITY:
            continue
        if SequenceMatcher(a=password, b=part).ratio() >= MAX_SIMILARITY:
            return True
    return False


def password_problems(password: str, *, email: str) -> list[FieldMessage]:
    """Every rule `password` breaks (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(FieldMessage(PASSWORD_TOO_SHORT, min_length=MIN_LENGTH))
    if _too_similar(password, email):
        problems.append(FieldMessage(PASSWORD_TOO_SIMILAR))
    if password.lower().strip() in _common_passwords():
        problems.append(FieldMessage(PASSWORD_TOO_COMMON))
    if password.isdigit():
        problems.append(FieldMessage(PASSWORD_ENTIRELY_NUMERIC))
    return problems
