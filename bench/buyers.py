"""The checkout benchmark's baseline, in a process of its own so that its work is not
counted in the measuring process.

    python -m bench.buyers DATABASE_URL CONCURRENCY   (stdin: a JSON list of user ids)

Each of CONCURRENCY buyers takes the next shopper whose cart is filled and checks it
out with the same transaction as the checkout service, sent through aiomysql with no
HTTP and no ORM. Prints one JSON line: `seconds` (the whole run), `cpu_seconds` (this
process's CPU time over the run), `placed` and `short` (checkouts that found a product
sold out), and `p50_ms` and `p99_ms` (checkout latency). bench/bare_checkout.py runs
the same transaction (`checkout`) behind a bare Tornado handler.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiomysql

from bench.common import mariadb_address, percentile

PLACED, SHORT = "placed", "short"
# MySQL errors after which the transaction is run again, as core/db.py does.
RETRYABLE = {1213, 1205}
ATTEMPTS = 4


async def run_buyers(
    shoppers: list[Any], concurrency: int, checkout: Callable[[Any], Awaitable[str]]
) -> dict[str, Any]:
    remaining: Iterator[Any] = iter(shoppers)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def buyer() -> None:
        for shopper in remaining:
            started = time.perf_counter()
            outcome = await checkout(shopper)
            latencies.append(time.perf_counter() - started)
            outcomes[outcome] += 1

    started, cpu_started = time.perf_counter(), time.process_time()
    async with asyncio.TaskGroup() as buyers:  # one failure stops them all
        for _ in range(concurrency):
            buyers.create_task(buyer())
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        PLACED: outcomes[PLACED],
        SHORT: outcomes[SHORT],
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def over_sql(database_url: str, concurrency: int, user_ids: list[int]) -> dict[str, Any]:
    pool = await open_pool(database_url, concurrency)
    try:
        return await run_buyers(user_ids, concurrency, partial(checkout, pool))
    finally:
        pool.terminate()  # also the connections of buyers stopped by a failure
        await pool.wait_closed()


async def open_pool(database_url: str, size: int) -> aiomysql.Pool:
    """`size` connections, transactions at the isolation level the service uses."""
    return await aiomysql.create_pool(
        **mariadb_address(database_url),
        minsize=size,
        maxsize=size,
        autocommit=False,
        init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    )


async def checkout(pool: aiomysql.Pool, user_id: int) -> str:
    """The user's cart ordered with the service's statements (PLACED, or SHORT of stock
    and rolled back), run again after a deadlock as the service does."""
    for attempt in range(1, ATTEMPTS + 1):
        async with pool.acquire() as connection:
            try:
                outcome = await place_order(connection, user_id)
            except aiomysql.OperationalError as error:
                await connection.rollback()
                if error.args[0] not in RETRYABLE or attempt == ATTEMPTS:
                    raise
                continue
            if outcome == PLACED:
                await connection.commit()
            else:
                await connection.rollback()
            return outcome
    raise AssertionError("unreachable: the last attempt returns or raises")


async def place_order(connection: aiomysql.Connection, user_id: int) -> str:
    """The statements services/checkout.py sends for an order without a discount,
    from its user lookup on."""
    now = datetime.now(UTC).replace(tzinfo=None)
    async with connection.cursor() as cursor:
        await cursor.execute(
            "SELECT email, full_name, language FROM users WHERE id = %s AND is_active", (user_id,)
        )
        await cursor.fetchone()
        await cursor.execute("SELECT id FROM carts WHERE user_id = %s FOR UPDATE", (user_id,))
        (cart_id,) = await cursor.fetchone()
        await cursor.execute(
            "SELECT i.product_id, i.quantity, p.slug, p.name, p.price_cents, p.currency,"
            " p.category_id"
            " FROM cart_items i JOIN products p ON p.id = i.product_id"
            " WHERE i.cart_id = %s ORDER BY i.product_id",
            (cart_id,),
        )
        items = await cursor.fetchall()
        for product_id, quantity, *_ in items:
            await cursor.execute(
                "UPDATE products SET stock = stock - %s, updated_at = %s"
                " WHERE id = %s AND is_active AND stock >= %s",
                (quantity, now, product_id, quantity),
            )
            if cursor.rowcount != 1:
                return SHORT
        ids = [item[0] for item in items]
        await cursor.execute(
            "SELECT slug, stock FROM products WHERE id IN (%s) ORDER BY id"
            % ", ".join(["%s"] * len(ids)),
            ids,
        )
        await cursor.fetchall()
        subtotal = sum(item[1] * item[4] for item in items)
        await cursor.execute(
            "INSERT INTO orders (user_id, status, subtotal_cents, discount_total_cents,"
            " total_cents, currency, shipping_address, created_at, updated_at)"
            " VALUES (%s, 'pending_payment', %s, 0, %s, %s, %s, %s, %s)",
            (user_id, subtotal, subtotal, items[0][5], ADDRESS_JSON, now, now),
        )
        order_id = cursor.lastrowid
        await cursor.executemany(
            "INSERT INTO order_items (order_id, product_id, product_slug, name,"
            " unit_price_cents, quantity) VALUES (%s, %s, %s, %s, %s, %s)",
            [(order_id, item[0], item[2], item[3], item[4], item[1]) for item in items],
        )
        await cursor.execute("DELETE FROM cart_items WHERE cart_id = %s", (cart_id,))
        # Written as sent already: the service's dispatcher, running through the rounds,
        # must not spend the service's time on the baseline's mail.
        await cursor.execute(
            "INSERT INTO outbox_messages (recipient, subject, body, created_at, attempts,"
            " sent_at) VALUES (%s, %s, %s, %s, 0, %s)",
            (f"user{user_id}@bench.example", f"Order {order_id}", MAIL_BODY, now, now),
        )
        await cursor.execute("UPDATE carts SET updated_at = %s WHERE id = %s", (now, cart_id))
        await cursor.execute(
            "INSERT INTO order_events (order_id, status, created_at)"
            " VALUES (%s, 'pending_payment', %s)",
            (order_id, now),
        )
    return PLACED


ADDRESS_JSON = json.dumps(
    {"name": "Ada Buyer", "line1": "1 Long Street", "city": "Leeds", "postal_code": "LS1 1AA"}
)
# About the size of the confirmation mail the service renders.
MAIL_BODY = "Thank you for your order.\n" + "3 x Bench Item: 14.97 USD\n" * 3 + "Total\n" * 4


def main(database_url: str, concurrency: int) -> int:
    user_ids = json.load(sys.stdin)
    print(json.dumps(asyncio.run(over_sql(database_url, concurrency, user_ids))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
