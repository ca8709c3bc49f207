"""Declarative base, naming convention and shared column types."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import DateTime, MetaData, String, Table, inspect
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (portable to SQLite and MariaDB), returns aware UTC."""

    # Microsecond precision on MariaDB/MySQL, whose DATETIME keeps whole seconds by default.
    impl = DateTime(timezone=False).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value


def exact_string(length: int) -> String:
    """A VARCHAR(length) whose values compare byte for byte on every backend: equal only
    when they are the same text, so `ä` is not `a` and `A` is not `a`.

    For identities (emails, slugs, discount codes, idempotency keys, provider ids, token
    hashes); a service that wants case-insensitive matching stores one case. SQLite
    already compares text byte for byte; MariaDB/MySQL would fold case and accents under
    the server's default collation, so the column is declared `utf8mb4_bin` there
    (migration 0002 changes existing databases).
    """
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def table_of(model: type[Base]) -> Table:
    """The model's table, for Core statements built once on a hot path (`__table__` is
    typed as any FromClause)."""
    return cast(Table, model.__table__)


ModelT = TypeVar("ModelT", bound=Base)


def column_keys(model: type[Base]) -> tuple[str, ...]:
    """The attribute names of the model's columns, in the table's order."""
    mapper = inspect(model)
    return tuple(mapper.get_property_by_column(column).key for column in table_of(model).c)


def object_of_row(model: type[ModelT]) -> Callable[[Sequence[Any]], ModelT]:
    """What builds a `model` object (transient) from a row of its table's columns, in
    the table's order (`select(*table_of(model).c)`)."""
    keys = column_keys(model)
    return lambda row: model(**dict(zip(keys, row, strict=True)))
