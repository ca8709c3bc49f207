"""Reading users on the hot paths: every authenticated request reads its user, and
checkout reads whom to mail."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import make_transient_to_detached

from core.direct import Direct, Statement
from models.accounts import User
from models.base import object_of_row, table_of

_USERS = table_of(User)
_USER_OF_ROW = object_of_row(User)
_IS_ACTIVE_USER = (_USERS.c.id == bindparam("user_id"), _USERS.c.is_active.is_(True))
_ACTIVE_USER = Statement(select(*_USERS.c).where(*_IS_ACTIVE_USER))


class Addressee(NamedTuple):
    """What mail to a user needs."""

    email: str
    full_name: str
    language: str


_ACTIVE_ADDRESSEE = Statement(
    select(_USERS.c.email, _USERS.c.full_name, _USERS.c.language).where(*_IS_ACTIVE_USER)
)


async def get_active_user(db: Direct, *, user_id: int) -> User | None:
    """The user, unless unknown or deactivated, as a detached User (as a session closed
    after loading it leaves one)."""
    rows = await db.rows(_ACTIVE_USER, {"user_id": user_id})
    if not rows:
        return None
    user = _USER_OF_ROW(rows[0])
    make_transient_to_detached(user)
    return user


async def get_active_addressee(db: Direct, *, user_id: int) -> Addressee | None:
    """Whom to mail for the user, unless unknown or deactivated. Where a use case needs
    no more of the user (checkout), this spares reading the whole row into a User."""
    rows = await db.rows(_ACTIVE_ADDRESSEE, {"user_id": user_id})
    return Addressee(*rows[0]) if rows else None
