"""What the benchmarks share: a fresh database, a real server process, JSON requests."""

from __future__ import annotations

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

from tornado.httpclient import AsyncHTTPClient

ROOT = Path(__file__).resolve().parent.parent
# A slow answer is a figure to report, not a failure: wait far longer than HTTP clients do.
REQUEST_TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_environment(folder: str, **overrides: str) -> dict[str, str]:
    """The environment of a production-like server (DEBUG off, no Redis) on a new,
    migrated SQLite database in `folder`."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bench.db",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }
    env.pop("REDIS_URL", None)
    run_cli(env, "migrate")
    return env


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

    def resident_kib(self) -> int:
        """The server process's resident memory (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("VmRSS not found")


@contextmanager
def server(env: dict[str, str], log_path: Path) -> Iterator[RunningServer]:
    """`python -m app serve` on a free loopback port, its output in `log_path`."""
    port = free_port()
    command = [sys.executable, "-m", "app", "serve"]
    with spawn(command, {**env, "PORT": str(port)}, log_path, port) as pid:
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
