"""What the benchmarks share: a fresh database (SQLite, or the MariaDB one named by
BENCH_DATABASE_URL), a real server process, a private Redis, load processes and JSON
requests."""

from __future__ import annotations

import asyncio
import json
import math
import os
import resource
import secrets
import socket
import subprocess  # nosec B404 - starts this project's own server
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomysql
from sqlalchemy.engine import make_url
from tornado.httpclient import AsyncHTTPClient

ROOT = Path(__file__).resolve().parent.parent
# Emptied and migrated by the benchmarks that use it: never point it at data to keep.
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "mysql+aiomysql://root@127.0.0.1:3306/shop_bench"
)
# A slow answer is a figure to report, not a failure: wait far longer than HTTP clients do.
REQUEST_TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_environment(
    folder: str, *, database_url: str | None = None, **overrides: str
) -> dict[str, str]:
    """The environment of a production-like server (DEBUG off, no Redis) on a new,
    migrated database: `database_url` (emptied first) or SQLite in `folder`."""
    if database_url is not None:
        asyncio.run(empty_mariadb(database_url))
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{folder}/bench.db",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }
    env.pop("REDIS_URL", None)
    run_cli(env, "migrate")
    return env


def cli_cpu_seconds(env: dict[str, str], *args: str) -> float:
    """Run `python -m app <args>`; the CPU time (user + system) the command used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run_cli(env, *args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run `python -m app <args>`; its standard output."""
    result = subprocess.run(  # nosec B603 - fixed arguments
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"python -m app {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass(frozen=True)
class RunningServer:
    url: str
    pid: int

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def resident_kib(self) -> int:
        """The server process's resident memory (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("VmRSS not found")


@contextmanager
def server(
    env: dict[str, str], log_path: Path, command: tuple[str, ...] = ("app", "serve")
) -> Iterator[RunningServer]:
    """`python -m app serve` (or `python -m <command>`) on a free loopback port given
    as PORT, its output in `log_path`."""
    port = free_port()
    argv = [sys.executable, "-m", *command]
    with spawn(argv, {**env, "PORT": str(port)}, log_path, port) as pid:
        yield RunningServer(url=f"http://127.0.0.1:{port}", pid=pid)


@contextmanager
def spawn(
    command: list[str], env: dict[str, str] | None, log_path: Path, port: int
) -> Iterator[int]:
    """`command` started from the project's folder, its output in `log_path`; its pid
    once it listens on `port`. Terminated on leaving."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # nosec B603 - this project's own commands
            command, cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        wait_until_listening(port, log_path)
        yield process.pid
    except BaseException:
        # The log goes with the temporary folder: show its end beside the failure.
        print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_listening(port: int, log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start:\n{log_path.read_text()[-2000:]}")


def raise_open_file_limit(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to `needed` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"{needed} open files needed, the hard limit is {hard} (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def post_json(
    client: AsyncHTTPClient, url: str, body: Any, *, token: str | None = None, expect: int = 201
) -> Any:
    """POST `body` as JSON; the decoded answer, which must have status `expect`."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await client.fetch(
        url,
        method="POST",
        body=json.dumps(body),
        headers=headers,
        request_timeout=REQUEST_TIMEOUT,
        raise_error=False,
    )
    if response.code != expect:
        raise RuntimeError(f"POST {url} answered {response.code}: {response.body[:300]!r}")
    return json.loads(response.body)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (0 < fraction <= 1)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def mariadb_address(database_url: str) -> dict[str, Any]:
    """aiomysql's connection arguments for the server and database of `database_url`."""
    url = make_url(database_url)
    return {
        "host": url.host,
        "port": url.port or 3306,
        "user": url.username,
        "password": url.password or "",
        "db": url.database,
    }


async def connect_mariadb(database_url: str) -> aiomysql.Connection:
    """A plain aiomysql connection (autocommit) to the database of `database_url`."""
    return await aiomysql.connect(
        **mariadb_address(database_url), autocommit=True, connect_timeout=5
    )


async def query_mariadb(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query on its own connection (closed after)."""
    connection = await connect_mariadb(database_url)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(sql)
            return list(await cursor.fetchall())
    finally:
        connection.close()


async def prepare_mariadb(database_url: str) -> str | None:
    """Create the database of `database_url` when the server answers without it (as on a
    new machine); why it cannot be used, or None when it can."""
    address = mariadb_address(database_url)
    name = address.pop("db")
    try:
        connection = await aiomysql.connect(**address, autocommit=True, connect_timeout=5)
        try:
            async with connection.cursor() as cursor:
                # Asked first: IF NOT EXISTS would still print a warning when it exists.
                await cursor.execute(
                    "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,)
                )
                if await cursor.fetchone() is None:
                    await cursor.execute(f"CREATE DATABASE `{name}`")
        finally:
            connection.close()
    except Exception as error:  # whatever the reason, the benchmark reports and skips
        return f"{type(error).__name__}: {error}"
    return None


async def empty_mariadb(database_url: str) -> None:
    """Drop every table of the database, so that `migrate` starts from nothing."""
    connection = await connect_mariadb(database_url)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (make_url(database_url).database,),
            )
            tables = [row[0] for row in await cursor.fetchall()]
            if tables:
                await cursor.execute("SET SESSION foreign_key_checks = 0")
                await cursor.execute("DROP TABLE " + ", ".join(f"`{table}`" for table in tables))
    finally:
        connection.close()


@contextmanager
def redis_server(folder: str) -> Iterator[str]:
    """A private redis-server on a free loopback port, persisting nothing; its URL."""
    port = free_port()
    log_path = Path(folder) / f"redis-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # nosec B603 B607 - fixed arguments
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        wait_until_listening(port, log_path)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)


async def run_load(module: str, *args: str, stdin: Any) -> Any:
    """Run `python -m <module> <args>` with `stdin` as JSON on its standard input; the
    JSON line it prints."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate(json.dumps(stdin).encode())
    if process.returncode != 0:
        raise RuntimeError(f"python -m {module} failed with exit code {process.returncode}")
    return json.loads(output)


def milliseconds(values: list[float]) -> str:
    """p50 / p99 of `values` (seconds), in milliseconds."""
    return f"{percentile(values, 0.50) * 1000:.1f} / {percentile(values, 0.99) * 1000:.1f}"
