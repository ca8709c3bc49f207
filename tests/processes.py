"""Real processes for tests: the service (`python -m app serve`) and a private
redis-server, each on a free loopback port, each writing its output to a log file.

The test that starts a process owns it: a fixture's teardown ends it (`stop_all`,
`kill`), whatever happened. Waits are polls against a deadline, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.ioloop import IOLoop
from tornado.web import Application

from tests.client import ApiClient
from tests.conftest import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
# `serve()` exits within 10 s of SIGTERM (docs/websockets.md); a stop waits that long, then kills.
EXIT_SECONDS = 10.0
START_SECONDS = 30.0
POLL_SECONDS = 0.05


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def poll(
    check: Callable[[], Awaitable[bool] | bool], *, timeout: float, failure: str
) -> None:
    """Call `check` (a plain or a coroutine function) until it returns True;
    AssertionError(`failure`) after `timeout` s. The one way tests wait for a condition."""
    deadline = time.monotonic() + timeout
    while not await _holds(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"{failure} (waited {timeout:g} s)")
        await asyncio.sleep(POLL_SECONDS)


async def _holds(check: Callable[[], Awaitable[bool] | bool]) -> bool:
    result = check()
    return await result if inspect.isawaitable(result) else result


class OwnedProcess:
    """A subprocess started by the test, its stdout and stderr appended to `log_path`."""

    def __init__(
        self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self.env = env
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def terminate(self) -> None:
        """SIGTERM, as a process manager sends it; `wait_exit()` for the outcome."""
        if self._process is not None and self.running:
            self._process.terminate()

    async def wait_exit(self, timeout: float) -> int:
        """The exit code, once the process has ended; AssertionError after `timeout` s."""
        await poll(self._exited, timeout=timeout, failure=f"{self.name} did not exit")
        assert self._process is not None
        return self._process.returncode

    async def _exited(self) -> bool:
        return not self.running

    def kill(self) -> None:
        """End the process at once (SIGKILL), as a crash would."""
        if self._process is not None and self.running:
            self._process.kill()
        if self._process is not None:
            self._process.wait()

    def wait_or_kill(self, deadline: float) -> None:
        """Wait for the exit until `deadline` (time.monotonic()), then SIGKILL."""
        if self._process is None:
            return
        try:
            self._process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def require_redis_server() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH: these tests run a private Redis of their own")


class RedisServer(OwnedProcess):
    """A private, memory-only redis-server on a free port (never the shared one)."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        super().__init__("redis", command, log_dir / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start_and_wait(self) -> None:
        """Start (again, on the same port after `kill()`) and wait until PING answers."""
        self.start()
        await poll(self._answers_ping, timeout=START_SECONDS, failure="redis-server did not start")

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped (SIGSTOP) for the block, as a hung Redis: connections still
        open and data kept, but no answer to anything."""
        assert self._process is not None and self.running
        self._process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)

    async def _answers_ping(self) -> bool:
        if not self.running:
            raise AssertionError(f"redis-server exited:\n{self.log_tail()}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return await reader.readline() == b"+PONG\r\n"
        finally:
            writer.close()
            await writer.wait_closed()


class ServerHTTP:
    """What ApiClient needs of its HTTP client: `fetch(path, ...)`, here against a
    server process."""

    def __init__(self, http: AsyncHTTPClient, base_url: str) -> None:
        self.http = http
        self.base_url = base_url

    async def fetch(self, path: str, **kwargs: Any) -> HTTPResponse:
        return await self.http.fetch(self.base_url + path, **kwargs)


def server_settings(database_url: str, **more: str) -> dict[str, str]:
    """The test database, and the key the test's tokens are signed with."""
    return {"DATABASE_URL": database_url, "SECRET_KEY": TEST_SECRET_KEY, **more}


class ShopServer(OwnedProcess):
    """`python -m app serve` on a free port, configured by environment variables only
    (`settings`, e.g. {"DATABASE_URL": ...}): nothing leaks in from the caller's."""

    def __init__(self, name: str, settings: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONUNBUFFERED": "1",  # every log line reaches the file at once
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_LEVEL": "INFO",
            **settings,
        }
        command = [sys.executable, "-m", "app", "serve"]
        super().__init__(name, command, log_dir / f"server-{name}.log", env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, http: AsyncHTTPClient, app: Application) -> ApiClient:
        """An ApiClient talking to this process (`app` only names the routes)."""
        return ApiClient(ServerHTTP(http, self.url), app)

    def ws_url(self, app: Application, route: str, **query: Any) -> str:
        return f"ws://127.0.0.1:{self.port}{app.reverse_url(route)}?{urlencode(query)}"

    async def start_and_wait(self, http: AsyncHTTPClient) -> None:
        """Start and wait until /health answers 200."""
        self.start()

        async def healthy() -> bool:
            if not self.running:
                raise AssertionError(f"server {self.name} exited:\n{self.log_tail()}")
            try:
                response = await http.fetch(
                    self.url + "/health", raise_error=False, request_timeout=5
                )
            except OSError:  # not listening yet
                return False
            return response.code == 200

        await poll(healthy, timeout=START_SECONDS, failure=f"server {self.name} is not healthy")

    def logged(self, event: str) -> int:
        """How many of the JSON log lines so far are `event`."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return sum(
            1 for line in lines if line.startswith("{") and json.loads(line)["event"] == event
        )


def stop_all(*processes: OwnedProcess) -> None:
    """SIGTERM to each at once; SIGKILL to any still running EXIT_SECONDS later."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + EXIT_SECONDS
    for process in processes:
        process.wait_or_kill(deadline)


@contextmanager
def logs_on_failure(*processes: OwnedProcess) -> Iterator[None]:
    """Print the end of each process's log when the block fails (pytest shows it)."""
    try:
        yield
    except BaseException:
        for process in processes:
            print(f"----- {process.name}: last lines of {process.log_path} -----")
            print(process.log_tail())
        raise


@pytest.fixture(name="http")
def http_fixture(io_loop: IOLoop) -> Iterator[AsyncHTTPClient]:
    """A client for requests to server processes (a module that imports this fixture
    gets it)."""
    client = AsyncHTTPClient(force_instance=True, defaults={"request_timeout": 15})
    yield client
    client.close()


@pytest.fixture(name="redis_server")
def redis_server_fixture(io_loop: IOLoop, tmp_path: Any) -> Iterator[RedisServer]:
    """A private redis-server of the test's own, which it may kill, freeze or restart
    (a module that imports this fixture gets it)."""
    require_redis_server()
    redis = RedisServer(tmp_path)
    try:
        io_loop.run_sync(redis.start_and_wait)
        yield redis
    finally:
        redis.kill()
