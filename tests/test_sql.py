"""Statements sent straight to the driver (core/direct/) behave as `session.execute`
would: inside the session's transaction, with the types' conversions and SQLAlchemy's
errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from core.context import AppContext
from core.direct import Statement, direct
from models.base import table_of
from models.catalog import Product
from models.mail import OutboxMessage
from tests.order_factories import add_product, stock_of

_OUTBOX = table_of(OutboxMessage)
_PRODUCTS = table_of(Product)
_ADD_MESSAGE = Statement(insert(_OUTBOX))
_ADD_PRODUCT = Statement(insert(_PRODUCTS))
_MESSAGE_TIMES = Statement(
    select(_OUTBOX.c.created_at, _OUTBOX.c.next_attempt_at).where(
        _OUTBOX.c.recipient == bindparam("recipient")
    )
)
_SET_STOCK = Statement(
    _PRODUCTS.update()
    .where(_PRODUCTS.c.slug == bindparam("product"))
    .values(stock=bindparam("stock"), updated_at=bindparam("now"))
)
WHEN = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)


def message(recipient: str) -> dict[str, object]:
    return {
        "recipient": recipient,
        "subject": "Hello",
        "body": "Text",
        "attempts": 0,
        "created_at": WHEN,
        "next_attempt_at": None,
    }


async def product_with_its_copy(ctx: AppContext) -> dict[str, object]:
    """Adds a product; the values of a copy of it, which its unique slug refuses."""
    product = await add_product(ctx, "brass-lamp")
    return {
        column.name: getattr(product, column.key)
        for column in _PRODUCTS.columns
        if column.name != "id"
    }


async def messages_to(ctx: AppContext, recipient: str) -> list[OutboxMessage]:
    async with ctx.sessionmaker() as session:
        found = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == recipient)
        )
        return list(found)


async def test_rows_written_are_committed_with_the_session_and_read_back_converted(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        db = await direct(session)
        added = await db.insert(_ADD_MESSAGE, message("ada@example.com"))
        # Read back within the transaction: the column type turns naive UTC back to aware.
        rows = await db.rows(_MESSAGE_TIMES, {"recipient": "ada@example.com"})
    assert rows == [(WHEN, None)]
    [stored] = await messages_to(ctx, "ada@example.com")
    assert (stored.id, stored.created_at, stored.subject) == (added, WHEN, "Hello")


async def test_rows_written_go_when_the_session_rolls_back(ctx: AppContext) -> None:
    await add_product(ctx, "brass-lamp", stock=10)
    with pytest.raises(LookupError):
        async with ctx.sessionmaker() as session, session.begin():
            db = await direct(session)
            changed = await db.write(_SET_STOCK, {"product": "brass-lamp", "stock": 3, "now": WHEN})
            assert changed == 1
            await db.insert(_ADD_MESSAGE, message("bo@example.com"))
            raise LookupError("the use case fails after the writes")
    assert await stock_of(ctx, "brass-lamp") == 10
    assert await messages_to(ctx, "bo@example.com") == []


async def test_a_duplicate_raises_sqlalchemys_integrity_error_and_the_session_recovers(
    ctx: AppContext,
) -> None:
    values = await product_with_its_copy(ctx)
    async with ctx.sessionmaker() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                await (await direct(session)).insert(_ADD_PRODUCT, values)
        async with session.begin():  # a new transaction gets a working connection
            db = await direct(session)
            await db.write(_SET_STOCK, {"product": "brass-lamp", "stock": 4, "now": WHEN})
    assert await stock_of(ctx, "brass-lamp") == 4


async def test_objects_added_to_the_session_are_flushed_before_a_direct_statement(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        session.add(OutboxMessage(**message("cy@example.com")))
        db = await direct(session)
        assert await db.rows(_MESSAGE_TIMES, {"recipient": "cy@example.com"}) == [(WHEN, None)]


async def test_direct_sql_outside_a_transaction_is_refused(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as session:
        with pytest.raises(RuntimeError, match="inside a transaction"):
            await direct(session)


async def test_a_statement_relying_on_a_python_column_default_is_refused(
    ctx: AppContext,
) -> None:
    """`attempts` has `default=0`, which only SQLAlchemy's execution path fills in."""
    without_attempts = message("dee@example.com")
    del without_attempts["attempts"]
    async with ctx.sessionmaker() as session, session.begin():
        db = await direct(session)
        with pytest.raises(ValueError, match="give attempts a value"):
            await db.insert(_ADD_MESSAGE, without_attempts)


# --- Transactions: the same statements in transactions of their own, no session ------


async def test_a_transaction_of_its_own_commits_when_its_block_ends(ctx: AppContext) -> None:
    async with ctx.transactions() as db:
        added = await db.insert(_ADD_MESSAGE, message("eve@example.com"))
        rows = await db.rows(_MESSAGE_TIMES, {"recipient": "eve@example.com"})
    assert rows == [(WHEN, None)]
    [stored] = await messages_to(ctx, "eve@example.com")
    assert (stored.id, stored.created_at) == (added, WHEN)


async def test_a_transaction_of_its_own_rolls_back_when_its_block_raises(ctx: AppContext) -> None:
    await add_product(ctx, "brass-lamp", stock=10)
    with pytest.raises(LookupError):
        async with ctx.transactions() as db:
            await db.write(_SET_STOCK, {"product": "brass-lamp", "stock": 3, "now": WHEN})
            await db.insert(_ADD_MESSAGE, message("fay@example.com"))
            raise LookupError("the use case fails after the writes")
    assert await stock_of(ctx, "brass-lamp") == 10
    assert await messages_to(ctx, "fay@example.com") == []


async def test_transactions_of_their_own_hand_every_connection_back(ctx: AppContext) -> None:
    values = await product_with_its_copy(ctx)
    # More than the pool holds, half of them failing on the unique index.
    for number in range(40):
        if number % 2:
            with pytest.raises(IntegrityError):
                async with ctx.transactions() as db:
                    await db.insert(_ADD_PRODUCT, values)
        else:
            async with ctx.transactions() as db:
                await db.write(_SET_STOCK, {"product": "brass-lamp", "stock": number, "now": WHEN})
    assert await stock_of(ctx, "brass-lamp") == 38
    assert ctx.transactions.in_use == 0
