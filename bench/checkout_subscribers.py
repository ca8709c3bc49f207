"""Checkout latency with 2,000 idle inventory subscribers, against none.

Target: with SUBSCRIBERS idle sockets open (watching another product, so they hold a
subscription and receive nothing), the p50 and p99 of `POST /api/v1/orders` stay within
1.5x of the same figures with no socket open. Reported beside it, without a target: the
same sockets watching the product being bought, so that every checkout fans one
`inventory.changed` out to each of them (bench/ measures fan-out time on its own).

One server process (`python -m app serve`, DEBUG off, SQLite) and BUYERS concurrent
buyers, each adding the product to its cart and then checking out; only the POST
/api/v1/orders is timed. The subscribers live in a separate process
(bench/idle_subscribers.py), started for each round that has them, so their reading is
not charged to the measuring process; they share the machine's CPUs with the server,
as real clients on the same host would. Rounds alternate (none, idle, watching, twice)
so that drift on a noisy machine touches every kind alike. The buyers are
accounts made with `create-staff`: verified without a mail round trip, and checkout
does not depend on the role.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient

from bench.common import (
    RunningServer,
    fresh_environment,
    percentile,
    post_json,
    raise_open_file_limit,
    run_cli,
    server,
)
from bench.idle_subscribers import SPARE_FILES, subscribers
from bench.shop_data import ADDRESS

TITLE = "Checkout latency with idle inventory subscribers"
CHECKOUTS = int(os.environ.get("BENCH_CHECKOUTS", "600"))
BUYERS = int(os.environ.get("BENCH_SOCKET_BUYERS", "4"))
SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", "2000"))
WARM_UP_CHECKOUTS = 20
TARGET_RATIO = 1.5
# What the subscribers watch in each round: nothing (no sockets), another product, the
# product bought.
NONE, IDLE, WATCHING = "none", "idle", "watching"
ROUNDS = (NONE, IDLE, WATCHING, NONE, IDLE, WATCHING)
PRODUCT = {"name": "Bench Lamp", "price": "19.99", "stock": 1_000_000}
OTHER_PRODUCT = {"name": "Bench Shelf", "price": "9.99", "stock": 5}


@dataclass(frozen=True)
class Round:
    """One round's checkout latencies (seconds); with subscribers, the server's memory
    before and after they connected and what the subscriber process received."""

    kind: str
    latencies: list[float]
    resident_before_kib: int = 0
    resident_after_kib: int = 0
    delivery: dict[str, Any] = field(default_factory=dict)


class Shop:
    """The buyers' side of the API."""

    def __init__(self, running: RunningServer) -> None:
        self.url = running.url + "/api/v1"
        self.client = AsyncHTTPClient(force_instance=True, max_clients=BUYERS)

    async def login(self, email: str, password: str) -> str:
        tokens = await post_json(
            self.client,
            f"{self.url}/auth/login",
            {"email": email, "password": password},
            expect=200,
        )
        return str(tokens["access_token"])

    async def create_product(self, token: str, fields: dict[str, Any]) -> str:
        product = await post_json(self.client, f"{self.url}/products", fields, token=token)
        return str(product["slug"])

    async def checkouts(self, tokens: list[str], product: str, count: int) -> list[float]:
        """Seconds each of `count` checkouts took, the buyers buying side by side."""
        remaining = iter(range(count))
        latencies: list[float] = []

        async def buyer(token: str) -> None:
            for _ in remaining:
                await post_json(
                    self.client,
                    f"{self.url}/cart/items",
                    {"product": product, "quantity": 1},
                    token=token,
                )
                started = time.perf_counter()
                await post_json(
                    self.client, f"{self.url}/orders", {"shipping_address": ADDRESS}, token=token
                )
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(buyer(token) for token in tokens))
        return latencies


async def measure(running: RunningServer, buyers: dict[str, str]) -> list[Round]:
    """Log the buyers in, create the product they buy, warm up, then run the ROUNDS."""
    shop = Shop(running)
    tokens = [await shop.login(email, password) for email, password in buyers.items()]
    product = await shop.create_product(tokens[0], PRODUCT)
    other = await shop.create_product(tokens[0], OTHER_PRODUCT)
    await shop.checkouts(tokens, product, WARM_UP_CHECKOUTS)
    rounds = []
    for kind in ROUNDS:
        if kind == NONE:
            rounds.append(Round(NONE, await shop.checkouts(tokens, product, CHECKOUTS)))
        else:
            watched = product if kind == WATCHING else other
            rounds.append(await measure_with_subscribers(running, shop, tokens, product, watched))
    shop.client.close()
    return rounds


async def measure_with_subscribers(
    running: RunningServer, shop: Shop, tokens: list[str], product: str, watched: str
) -> Round:
    """One round with SUBSCRIBERS sockets watching `watched`, checking that each got
    every change it should (none when it watches another product)."""
    kind = WATCHING if watched == product else IDLE
    changes = CHECKOUTS if kind == WATCHING else 0
    address = f"{running.ws_url}/ws/inventory?products={watched}"
    before = running.resident_kib()
    async with subscribers(SUBSCRIBERS, address) as process:
        after = running.resident_kib()
        latencies = await shop.checkouts(tokens, product, CHECKOUTS)
        delivery = await process.delivered(changes)
    return Round(kind, latencies, before, after, delivery)


def run() -> list[str]:
    """Measure; the report as Markdown lines."""
    raise_open_file_limit(SUBSCRIBERS + SPARE_FILES)
    with tempfile.TemporaryDirectory() as folder:
        # Checkouts log in once per buyer; a login limit meant for people is not the subject.
        env = fresh_environment(folder, LOGIN_RATE_LIMIT="1000/minute")
        password = "bench-" + os.urandom(12).hex()
        buyers = {f"buyer{number}@bench.example": password for number in range(BUYERS)}
        for email in buyers:
            run_cli({**env, "STAFF_PASSWORD": password}, "create-staff", "--email", email)
        with server(env, Path(folder) / "server.log") as running:
            rounds = asyncio.run(measure(running, buyers))
    return report(rounds)


def report(rounds: list[Round]) -> list[str]:
    def row(label: str, latencies: list[float]) -> str:
        p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
        return f"| {label} | {len(latencies)} | {p50:.1f} | {p99:.1f} |"

    latencies = {
        kind: [value for r in rounds if r.kind == kind for value in r.latencies]
        for kind in (NONE, IDLE, WATCHING)
    }
    labels = {
        NONE: "no sockets",
        IDLE: f"{SUBSCRIBERS} idle sockets",
        WATCHING: f"{SUBSCRIBERS} sockets watching the product bought",
    }
    lines = [
        f"{CHECKOUTS} checkouts per round, {BUYERS} buyers at once; SQLite, one server process.",
        "",
        "| round | checkouts | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        row(f"{number}: {labels[r.kind]}", r.latencies) for number, r in enumerate(rounds, start=1)
    ]
    lines += [row(f"all rounds, {labels[kind]}", latencies[kind]) for kind in labels]
    lines += [
        "",
        "| ratio to no sockets | p50 | p99 | target | verdict |",
        "|---|---:|---:|---|---|",
    ]
    for kind, target in ((IDLE, f"<= {TARGET_RATIO}x"), (WATCHING, "reported")):
        p50, p99 = (
            percentile(latencies[kind], fraction) / percentile(latencies[NONE], fraction)
            for fraction in (0.50, 0.99)
        )
        verdict = "met" if max(p50, p99) <= TARGET_RATIO else "MISSED"
        if kind == WATCHING:
            verdict = "-"
        lines.append(f"| {labels[kind]} | {p50:.2f}x | {p99:.2f}x | {target} | {verdict} |")
    lines += ["", "| subscriber round | RSS before | RSS after | per idle socket | delivered |"]
    lines.append("|---|---:|---:|---:|---|")
    for number, r in enumerate(rounds, start=1):
        if r.kind == NONE:
            continue
        per_socket = (r.resident_after_kib - r.resident_before_kib) / SUBSCRIBERS
        lines.append(
            f"| {number} | {r.resident_before_kib / 1024:.1f} MiB "
            f"| {r.resident_after_kib / 1024:.1f} MiB | {per_socket:.1f} KiB "
            f"| {delivery_summary(r)} |"
        )
    lines += [
        "",
        "RSS: the server's VmRSS before the subscribers connect and once all have their "
        "snapshot; memory freed after a round stays with the process, so the second "
        "subscriber round mostly reuses it. delivered: `inventory.changed` frames received "
        "of those expected (one per socket per checkout), and the time from the round's "
        "last checkout until every socket had all of its own.",
    ]
    return lines


def delivery_summary(measured: Round) -> str:
    delivery = measured.delivery
    expected = SUBSCRIBERS * CHECKOUTS if measured.kind == WATCHING else 0
    summary = f"{delivery['changes']} of {expected} in {delivery['drain_seconds']:.2f} s"
    if delivery["closed_by_server"]:
        summary += f"; closed by the server: {delivery['closed_by_server']}"
    return summary
