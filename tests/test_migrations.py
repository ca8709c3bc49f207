"""Alembic revisions applied to a database that already holds rows, and undone.

These tests move the session's database down and back up to head: the `finally` brings
it back to head whatever happens, and the `ctx` fixture empties the tables after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from core.context import AppContext
from tests.client import ApiClient
from tests.factories import DEFAULT_PASSWORD, create_user

ROOT = Path(__file__).resolve().parent.parent
# The columns compared byte for byte since revision 0002 (docs/api.md).
EXACT_COLUMNS = {
    ("users", "email"),
    ("email_verification_tokens", "token_hash"),
    ("refresh_tokens", "token_hash"),
    ("categories", "slug"),
    ("products", "slug"),
    ("discounts", "code"),
    ("orders", "idempotency_key"),
    ("orders", "payment_intent_id"),
    ("stripe_events", "id"),
}


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    return config


def in_a_thread(job: Callable[[Config, str], None], config: Config, revision: str) -> None:
    """An Alembic command in a thread of its own: its env.py runs an event loop with
    asyncio.run(), which must not touch the test's loop."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(job, config, revision).result()


@pytest.fixture
def at_0001(ctx: AppContext) -> Iterator[Config]:
    """The session's database downgraded to revision 0001, and upgraded to head again
    after the test whatever it did."""
    config = alembic_config(ctx.settings.database_url)
    in_a_thread(command.downgrade, config, "0001")
    try:
        yield config
    finally:
        in_a_thread(command.upgrade, config, "head")


async def collations(ctx: AppContext) -> dict[tuple[str, str], str]:
    """Each text column's collation (MariaDB/MySQL)."""
    async with ctx.engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL"
            )
        )
        return {(table, column): collation for table, column, collation in rows}


async def test_after_upgrading_from_0001_a_look_alike_email_registers(
    client: ApiClient, ctx: AppContext, at_0001: Config
) -> None:
    await create_user(ctx, "ada@example.com")
    await asyncio.to_thread(command.upgrade, at_0001, "head")

    registered = await client.post(
        "auth:register",
        json={"email": "äda@example.com", "password": "purple-walrus-umbrella-42"},
    )
    assert registered.status == 201, registered.body
    login = {"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    assert (await client.post("auth:login", json=login)).status == 200


@pytest.mark.mariadb
async def test_0002_makes_exactly_the_identity_columns_binary_and_its_downgrade_undoes_it(
    ctx: AppContext, at_0001: Config
) -> None:
    before = await collations(ctx)
    # JSON columns (orders.shipping_address) are binary from the start.
    binary_before = {column for column, name in before.items() if name == "utf8mb4_bin"}
    assert not binary_before & EXACT_COLUMNS

    await asyncio.to_thread(command.upgrade, at_0001, "head")
    after = await collations(ctx)
    binary_after = {column for column, name in after.items() if name == "utf8mb4_bin"}
    assert binary_after == binary_before | EXACT_COLUMNS
    # Every other column is as it was.
    assert {c: n for c, n in after.items() if c not in EXACT_COLUMNS} == {
        c: n for c, n in before.items() if c not in EXACT_COLUMNS
    }
