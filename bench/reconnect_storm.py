"""Reconnect storm: CLIENTS `/ws/orders` clients reconnecting at once with `since`.

As after a restart of the server: every shopper has an order that moved on while their
client was away (paid, processing, shipped), each client missed one to three of its
events, and all of them reconnect in the same instant with the last event id they saw.
Figures: the time until every client has caught up (the missed events, in order, none
twice), each client's catch-up time, and the database statements per reconnect
(MariaDB's `Questions` counter across the storm, divided by the clients; the server
does nothing else meanwhile, and its pool is opened before). Target: no client misses
an event; the times are reported.

The data is made through the services beforehand; the server (`python -m app serve`,
DEBUG off, on the BENCH_DATABASE_URL database) starts after it, and the clients live in
a separate process (bench/order_clients.py).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient

from bench import shop_data
from bench.common import (
    BENCH_DATABASE_URL,
    RunningServer,
    fresh_environment,
    percentile,
    prepare_mariadb,
    query_mariadb,
    raise_open_file_limit,
    run_load,
    server,
)
from bench.idle_subscribers import SPARE_FILES

TITLE = "Reconnect storm on /ws/orders"
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2000"))
# Requests that open the server's pool before the storm, so that connecting (and the
# statements a new connection runs) is not counted per reconnect.
WARM_UP_REQUESTS = 30


async def prepare(env: dict[str, str]) -> list[dict[str, Any]]:
    """One shipped order per shopper; per client its token, `since` and the ids of the
    one to three events it missed."""
    async with shop_data.shop_context(env) as ctx:
        (slug,) = await shop_data.add_products(ctx, [CLIENTS])
        shoppers = await shop_data.add_shoppers(ctx, CLIENTS)
        timelines = await shop_data.side_by_side(
            partial(shop_data.place_order, ctx, user, slug) for user, _ in shoppers
        )
    clients = []
    for number, ((_, token), timeline) in enumerate(zip(shoppers, timelines)):
        missed = 1 + number % 3
        clients.append(
            {"token": token, "since": timeline[-missed - 1], "expect": timeline[-missed:]}
        )
    return clients


async def questions() -> int:
    """MariaDB's count of statements received from clients since it started."""
    [(_, value)] = await query_mariadb(BENCH_DATABASE_URL, "SHOW GLOBAL STATUS LIKE 'Questions'")
    return int(value)


async def storm(running: RunningServer, clients: list[dict[str, Any]]) -> dict[str, Any]:
    http = AsyncHTTPClient(force_instance=True, max_clients=WARM_UP_REQUESTS)
    await asyncio.gather(*(http.fetch(f"{running.url}/health") for _ in range(WARM_UP_REQUESTS)))
    http.close()
    before = await questions()
    result: dict[str, Any] = await run_load("bench.order_clients", running.ws_url, stdin=clients)
    # The reading itself is one statement.
    result["statements"] = await questions() - before - 1
    return result


def run() -> list[str]:
    """Measure; the report as Markdown lines."""
    unreachable = asyncio.run(prepare_mariadb(BENCH_DATABASE_URL))
    if unreachable:
        return [f"Skipped: MariaDB at BENCH_DATABASE_URL does not answer ({unreachable})."]
    raise_open_file_limit(CLIENTS + SPARE_FILES)
    with tempfile.TemporaryDirectory() as folder:
        env = fresh_environment(folder, database_url=BENCH_DATABASE_URL)
        clients = asyncio.run(prepare(env))
        with server(env, Path(folder) / "server.log") as running:
            result = asyncio.run(storm(running, clients))
    return report(result)


def report(result: dict[str, Any]) -> list[str]:
    catch_up = result["catch_up"] or [float("nan")]
    per_client = f"{percentile(catch_up, 0.50):.2f} / {percentile(catch_up, 0.99):.2f}"
    lost = result["missed"] + result["unexpected"] + result["failed"]
    verdict = "met" if lost == 0 else "MISSED"
    missed_events = sum(1 + number % 3 for number in range(CLIENTS))
    return [
        f"{CLIENTS} clients reconnecting at once with `since`, {missed_events} missed events "
        "in all (one to three each); one server process on MariaDB.",
        "",
        "| figure | measured | same-run baseline | ratio | target | verdict | p50 / p99 |",
        "|---|---:|---|---|---|---|---:|",
        f"| time until every client caught up | {result['seconds']:.2f} s | - | - | reported "
        f"| - | {per_client} s per client |",
        f"| database statements per reconnect | {result['statements'] / CLIENTS:.1f} | - | - "
        "| reported | - | - |",
        f"| clients that missed an event, got one twice or out of order, or failed "
        f"| {lost} of {CLIENTS} | - | - | none | {verdict} | - |",
        "",
        f"Caught up: {result['caught_up']}; missed an event: {result['missed']}; an "
        f"unexpected or repeated event: {result['unexpected']}; could not catch up: "
        f"{result['failed']}. Reconnections, by close code or error: "
        f"{result['retries'] or 'none'} (a client closed before it caught up waits 0.5-1.5 s "
        "and reconnects from its last event, as a real client does). Statements: MariaDB's "
        f"`Questions` across the storm ({result['statements']} in all), which counts every "
        "statement a client sends, COMMIT and ROLLBACK included.",
    ]
