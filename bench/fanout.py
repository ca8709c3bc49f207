"""Websocket fan-out: from a staff stock change to the last subscriber's delivery.

SUBSCRIBERS sockets watch one product on `/ws/inventory`; a staff member changes its
stock with `PATCH /api/v1/products/{slug}` PATCHES times, one change at a time. Figure:
the time from sending the PATCH until the last socket has the `inventory.changed`
frame. Baseline: a bare Tornado server (bench/bare_broadcast.py) writing the same
message to as many sockets, timed from sending its `POST /broadcast`. Target: the
service's p50 and p99 within TARGET_RATIO of the baseline's. Also measured: resident
memory per idle socket (both servers), and the same fan-out with two service processes
sharing a private Redis, the sockets split between them and the PATCH sent to one.

The subscribers live in a separate process (bench/idle_subscribers.py) and stamp each
arrival with time.monotonic(), the clock this process stamps the sending with. Rounds
alternate (baseline, service, twice) so that drift on a noisy machine touches both.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient

from bench.common import (
    RunningServer,
    fresh_environment,
    milliseconds,
    percentile,
    post_json,
    raise_open_file_limit,
    redis_server,
    run_cli,
    server,
)
from bench.idle_subscribers import SPARE_FILES, subscribers

TITLE = "Websocket fan-out"
SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", "2000"))
# Per round: 200 samples of each kind, so that p99 is not simply the slowest one.
PATCHES = int(os.environ.get("BENCH_PATCHES", "100"))
TARGET_RATIO = 1.5
SERVICE, BASELINE, TWO_PROCESSES = "service", "baseline", "two processes via Redis"
ROUNDS = (BASELINE, SERVICE, BASELINE, SERVICE)
STAFF_EMAIL = "staff@bench.example"
STOCK = 1_000_000


@dataclass
class Round:
    kind: str
    fanout: list[float]  # seconds from sending a change until the last socket had it
    answers: list[float]  # seconds until the PATCH (or POST /broadcast) was answered
    resident_before_kib: int
    resident_after_kib: int
    incomplete: int  # sockets that missed a change


# Sends one change and returns when its request was answered.
Change = Callable[[int], Awaitable[None]]


async def measure_round(kind: str, change: Change, urls: list[str], holder: RunningServer) -> Round:
    """PATCHES changes to SUBSCRIBERS sockets connected to `urls`, one after another;
    `holder` is the server whose memory is read."""
    fanout, answers = [], []
    incomplete = 0
    before = holder.resident_kib()
    async with subscribers(SUBSCRIBERS, *urls) as process:
        after = holder.resident_kib()
        for number in range(1, PATCHES + 1):
            sent = time.monotonic()
            await change(STOCK - number)
            answers.append(time.monotonic() - sent)
            delivery = await process.delivered(number)
            incomplete += SUBSCRIBERS - delivery["complete"]
            fanout.append(delivery["last_arrivals"][-1] - sent)
    return Round(kind, fanout, answers, before, after, incomplete)


class Staff:
    def __init__(self, running: RunningServer, token: str, slug: str) -> None:
        self.running = running
        self.token = token
        self.slug = slug
        self.client = AsyncHTTPClient(force_instance=True)

    async def set_stock(self, stock: int) -> None:
        response = await self.client.fetch(
            f"{self.running.url}/api/v1/products/{self.slug}",
            method="PATCH",
            body=json.dumps({"stock": stock}),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
            },
            raise_error=False,
        )
        if response.code != 200:
            raise RuntimeError(f"PATCH answered {response.code}: {response.body[:300]!r}")


def broadcaster(bare: RunningServer, slug: str) -> Change:
    """The baseline's change: the service's `inventory.changed` frame, sent by hand."""
    client = AsyncHTTPClient(force_instance=True)

    async def broadcast(stock: int) -> None:
        message = {
            "type": "inventory.changed",
            "product": slug,
            "stock": stock,
            "in_stock": True,
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        await client.fetch(f"{bare.url}/broadcast", method="POST", body=json.dumps(message))

    return broadcast


async def log_in_and_create_product(running: RunningServer, password: str) -> Staff:
    client = AsyncHTTPClient(force_instance=True)
    tokens = await post_json(
        client,
        f"{running.url}/api/v1/auth/login",
        {"email": STAFF_EMAIL, "password": password},
        expect=200,
    )
    token = str(tokens["access_token"])
    product = await post_json(
        client,
        f"{running.url}/api/v1/products",
        {"name": "Fan-out Lamp", "price": "19.99", "stock": STOCK},
        token=token,
    )
    return Staff(running, token, str(product["slug"]))


async def single_process(app: RunningServer, bare: RunningServer, password: str) -> list[Round]:
    staff = await log_in_and_create_product(app, password)
    watch = f"/ws/inventory?products={staff.slug}"
    rounds = []
    for kind in ROUNDS:
        if kind == SERVICE:
            rounds.append(await measure_round(kind, staff.set_stock, [app.ws_url + watch], app))
        else:
            change = broadcaster(bare, staff.slug)
            rounds.append(await measure_round(kind, change, [bare.ws_url + watch], bare))
    return rounds


async def two_processes(first: RunningServer, second: RunningServer, password: str) -> Round:
    staff = await log_in_and_create_product(first, password)
    urls = [running.ws_url + f"/ws/inventory?products={staff.slug}" for running in (first, second)]
    return await measure_round(TWO_PROCESSES, staff.set_stock, urls, first)


def run() -> list[str]:
    """Measure; the report as Markdown lines."""
    raise_open_file_limit(SUBSCRIBERS + SPARE_FILES)
    with tempfile.TemporaryDirectory() as folder:
        # Thousands of sockets asking for their snapshot at once on a busy machine may
        # wait on the pool longer than a request should; connecting is not measured.
        env = fresh_environment(folder, DATABASE_TIMEOUT="60")
        password = "bench-" + os.urandom(12).hex()
        run_cli({**env, "STAFF_PASSWORD": password}, "create-staff", "--email", STAFF_EMAIL)
        logs = Path(folder)
        with (
            server(env, logs / "service.log") as app,
            server(env, logs / "bare.log", ("bench.bare_broadcast",)) as bare,
        ):
            rounds = asyncio.run(single_process(app, bare, password))
        with redis_server(folder) as redis_url:
            shared = {**env, "REDIS_URL": redis_url}
            with (
                server(shared, logs / "first.log") as first,
                server(shared, logs / "second.log") as second,
            ):
                rounds.append(asyncio.run(two_processes(first, second, password)))
    return report(rounds)


def report(rounds: list[Round]) -> list[str]:
    def joined(kind: str) -> tuple[list[float], list[float]]:
        chosen = [r for r in rounds if r.kind == kind]
        return [v for r in chosen for v in r.fanout], [v for r in chosen for v in r.answers]

    def per_socket(kind: str) -> float:
        # The first round of a kind: later ones reuse memory the process kept.
        first = next(r for r in rounds if r.kind == kind)
        return (first.resident_after_kib - first.resident_before_kib) / SUBSCRIBERS

    service, service_answers = joined(SERVICE)
    baseline, baseline_answers = joined(BASELINE)
    redis, redis_answers = joined(TWO_PROCESSES)
    p50, p99 = (percentile(service, f) / percentile(baseline, f) for f in (0.50, 0.99))
    verdict = "met" if max(p50, p99) <= TARGET_RATIO else "MISSED"
    redis_p50 = percentile(redis, 0.50) / percentile(baseline, 0.50)
    lines = [
        f"{SUBSCRIBERS} sockets watching one product, {PATCHES} changes per round, one at a "
        "time; SQLite.",
        "",
        "| figure | measured p50 / p99 ms | same-run baseline p50 / p99 ms | ratio p50 / p99 "
        "| target | verdict |",
        "|---|---:|---:|---:|---|---|",
        f"| PATCH to last delivery, one process | {milliseconds(service)} "
        f"| {milliseconds(baseline)} | {p50:.2f}x / {p99:.2f}x | <= {TARGET_RATIO}x | {verdict} |",
        f"| PATCH to last delivery, two processes via Redis | {milliseconds(redis)} "
        f"| {milliseconds(baseline)} | {redis_p50:.2f}x (p50) | reported | - |",
        f"| request answered (PATCH; baseline POST /broadcast) | {milliseconds(service_answers)} "
        f"| {milliseconds(baseline_answers)} | - | reported | - |",
        f"| two processes: PATCH answered | {milliseconds(redis_answers)} | - | - | reported "
        "| - |",
        "",
        "| resident memory per idle socket | service | bare Tornado |",
        "|---|---:|---:|",
        f"| KiB (VmRSS growth while the sockets connect, / {SUBSCRIBERS}) "
        f"| {per_socket(SERVICE):.1f} | {per_socket(BASELINE):.1f} |",
        "",
        "| round | kind | p50 / p99 ms | sockets that missed a change |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {number} | {r.kind} | {milliseconds(r.fanout)} | {r.incomplete} |"
        for number, r in enumerate(rounds, start=1)
    ]
    lines += [
        "",
        "Baseline: a bare Tornado server writing the same message to every socket "
        "(`write_message` in a loop, as Tornado's chat demo does), from its `POST /broadcast`. "
        "Two processes: half the sockets on each, the PATCH sent to the first; the event "
        "reaches the second's sockets through Redis pub/sub.",
    ]
    return lines
