"""Catalog read throughput, with and without the response cache.

Starts two real servers (`python -m app serve`) on loopback over one seeded SQLite
database, one with CACHE_TTL=60 and one with CACHE_TTL=0, and drives each with a
bounded number of concurrent requests. Machines here are shared and noisy, so every
figure is reported as a ratio against a baseline measured in the same run:
`GET /robots.txt` on the same server (the framework's floor: no database, no cache).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient

from bench.common import RunningServer, fresh_environment, run_cli, server

TITLE = "Catalog read throughput"
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1500"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "20"))
CACHE_ON, CACHE_OFF = 60, 0
SCENARIOS = {
    "baseline: GET /robots.txt": "/robots.txt",
    "GET /api/v1/products?page_size=20": "/api/v1/products?page_size=20",
    "GET /api/v1/products?category=lighting&ordering=price": (
        "/api/v1/products?category=lighting&ordering=price"
    ),
    "GET /api/v1/products/brass-desk-lamp": "/api/v1/products/brass-desk-lamp",
}


async def throughput(running: RunningServer, path: str) -> float:
    """Requests per second for REQUESTS GETs of `path`, CONCURRENCY at a time."""
    client = AsyncHTTPClient(force_instance=True, max_clients=CONCURRENCY)
    remaining = iter(range(REQUESTS))

    async def worker() -> None:
        for _ in remaining:
            response = await client.fetch(running.url + path, raise_error=False)
            if response.code != 200:
                raise RuntimeError(f"{path} answered {response.code}")

    await client.fetch(running.url + path)  # warm up (and fill the cache where it is on)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    client.close()
    return REQUESTS / elapsed


def run() -> list[str]:
    """Measure; the report as Markdown lines."""
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        env = fresh_environment(folder)
        run_cli(env, "seed-demo")
        for cache_ttl in (CACHE_ON, CACHE_OFF):
            cache_env = {**env, "CACHE_TTL": str(cache_ttl)}
            with server(cache_env, Path(folder) / f"server-{cache_ttl}.log") as running:
                results[cache_ttl] = {
                    name: asyncio.run(throughput(running, path)) for name, path in SCENARIOS.items()
                }
    baseline = next(iter(SCENARIOS))
    lines = [
        f"{REQUESTS} requests per scenario, {CONCURRENCY} concurrent, SQLite, one process.",
        "",
        "| scenario | cache on | cache off | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for name in SCENARIOS:
        on = results[CACHE_ON][name] / results[CACHE_ON][baseline]
        off = results[CACHE_OFF][name] / results[CACHE_OFF][baseline]
        lines.append(f"| {name} | {on:.2f}x | {off:.2f}x | {on / off:.2f}x |")
    lines += [
        "",
        "cache on/off: throughput as a multiple of the baseline's on the same server; "
        "speed-up: cache on over cache off, each taken relative to its own baseline.",
    ]
    return lines
