"""JSON from clients, decoded within bounds.

Python's json module follows nesting as deep as the text goes (100,000 brackets end in
RecursionError) and converts integers of any length (Python refuses past 4,300 digits
with ValueError, and the conversion costs quadratic time before that). Request bodies
are already capped at MAX_BODY_SIZE before they get here; this caps their shape.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from core.errors import InvalidJSON

# Deeper than any request the API defines; deeper JSON is refused before it is parsed.
MAX_DEPTH = 32
# More than any number the API accepts (ids have at most 18 digits); longer is refused.
MAX_INTEGER_DIGITS = 64
# What decides nesting: quotes, escapes (so a \" does not end a string) and brackets.
_STRUCTURE = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def decode_json(data: bytes | str) -> Any:
    """The value `data` (UTF-8) holds. Raises InvalidJSON when it is not JSON, nests
    deeper than MAX_DEPTH, holds an integer longer than MAX_INTEGER_DIGITS digits, or
    uses NaN or Infinity (which JSON does not have)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        raise InvalidJSON() from error
    if _nests_deeper_than(text, MAX_DEPTH):
        raise InvalidJSON()
    try:
        return json.loads(text, parse_int=_bounded_int, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise InvalidJSON() from error


def _nests_deeper_than(text: str, limit: int) -> bool:
    """Whether arrays and objects in `text` nest deeper than `limit`. One pass, linear
    in the text; brackets inside strings do not count."""
    depth = 0
    in_string = False
    for mark in _STRUCTURE.findall(text):
        if mark == '"':
            in_string = not in_string
        elif in_string or mark.startswith("\\"):
            continue
        elif mark in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise InvalidJSON()
    return int(digits)


def _refuse_constant(name: str) -> NoReturn:
    raise InvalidJSON()
