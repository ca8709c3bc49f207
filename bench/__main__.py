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
import secrets
import socket
import subprocess  # nosec B404 - starts this project's own server
import sys
import tempfile
import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1500"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "20"))
SCENARIOS = {
    "baseline: GET /robots.txt": "/robots.txt",
    "GET /api/v1/products?page_size=20": "/api/v1/products?page_size=20",
    "GET /api/v1/products?category=lighting&ordering=price": (
        "/api/v1/products?category=lighting&ordering=price"
    ),
    "GET /api/v1/products/brass-desk-lamp": "/api/v1/products/brass-desk-lamp",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(  # nosec B603 - fixed arguments
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"python -m app {' '.join(args)} failed:\n{result.stderr}")


@contextmanager
def server(env: dict[str, str], cache_ttl: int) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(  # nosec B603 - fixed arguments
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env={**env, "PORT": str(port), "CACHE_TTL": str(cache_ttl)},
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until_listening(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


async def throughput(base: str, path: str) -> float:
    """Requests per second for REQUESTS GETs of `path`, CONCURRENCY at a time."""
    client = AsyncHTTPClient(force_instance=True, max_clients=CONCURRENCY)
    remaining = iter(range(REQUESTS))

    async def worker() -> None:
        for _ in remaining:
            response = await client.fetch(base + path, raise_error=False)
            if response.code != 200:
                raise RuntimeError(f"{path} answered {response.code}")

    await client.fetch(base + path)  # warm up (and fill the cache where it is on)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    client.close()
    return REQUESTS / elapsed


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("REDIS_URL", None)
        run_cli(env, "migrate")
        run_cli(env, "seed-demo")
        results: dict[int, dict[str, float]] = {}
        for cache_ttl in (60, 0):
            with server(env, cache_ttl) as base:
                results[cache_ttl] = {
                    name: asyncio.run(throughput(base, path)) for name, path in SCENARIOS.items()
                }
    print(f"{REQUESTS} requests per scenario, {CONCURRENCY} concurrent, SQLite, one process")
    print(f"{'scenario':58} {'cache on':>9} {'cache off':>9} {'speed-up':>9}")
    baseline = next(iter(SCENARIOS))
    for name in SCENARIOS:
        on = results[60][name] / results[60][baseline]
        off = results[0][name] / results[0][baseline]
        print(f"{name:58} {on:>8.2f}x {off:>8.2f}x {on / off:>8.2f}x")
    print("cache on/off: throughput as a multiple of the baseline's on the same server;")
    print("speed-up: cache on over cache off, each taken relative to its own baseline.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
