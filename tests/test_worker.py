"""PERIODIC_TASKS=false and `python -m app worker`: the periodic tasks (mail among
them) in a process of their own beside the servers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop

from app.server import ShopApplication
from core.context import AppContext
from models.mail import OutboxMessage
from tasks import TASKS
from tests.order_factories import add_product, ordered, shopper
from tests.processes import (  # noqa: F401 (fixtures)
    EXIT_SECONDS,
    START_SECONDS,
    OwnedProcess,
    ShopServer,
    http_fixture,  # noqa: F401 - the "http" fixture
    logs_on_failure,
    poll,
    server_settings,
    stop_all,
)
from tests.smtp import SmtpServer

pytestmark = pytest.mark.subprocess
SETTINGS = {"PERIODIC_TASKS": "false", "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}


@pytest.fixture
def api_server(
    ctx: AppContext,  # set up first, so the process stops before it empties the tables
    database_url: str,
    http: AsyncHTTPClient,
    io_loop: IOLoop,
    tmp_path: Path,
) -> Iterator[ShopServer]:
    server = ShopServer("api", server_settings(database_url, **SETTINGS), tmp_path)
    try:
        io_loop.run_sync(lambda: server.start_and_wait(http))
        yield server
    finally:
        stop_all(server)


def logged_fields(process: OwnedProcess, event: str) -> list[dict[str, Any]]:
    lines = process.log_path.read_text(errors="replace").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return [record for record in records if record["event"] == event]


def worker_process(database_url: str, log_dir: Path, **settings: str) -> OwnedProcess:
    """`python -m app worker` on the test database, to start."""
    return OwnedProcess(
        "worker",
        [sys.executable, "-m", "app", "worker"],
        log_dir / "worker.log",
        {
            "PATH": os.environ.get("PATH", ""),
            **server_settings(database_url, **SETTINGS, **settings),
        },
    )


def logged_at(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["timestamp"]).timestamp()


def interval_of(name: str) -> float:
    return next(task.interval_seconds for task in TASKS if task.name == name)


async def mail_sent_to(ctx: AppContext, recipient: str) -> bool:
    async with ctx.sessionmaker() as session:
        sent_at = await session.scalar(
            select(OutboxMessage.sent_at).where(OutboxMessage.recipient == recipient)
        )
    return sent_at is not None


async def test_the_worker_sends_the_mail_of_a_server_without_periodic_tasks(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    api_server: ShopServer,
    database_url: str,
    tmp_path: Path,
) -> None:
    [listening] = logged_fields(api_server, "listening")
    assert listening["periodic_tasks"] == 0
    await add_product(ctx, "brass-lamp", stock=5)
    buyer = await shopper(ctx)
    order = await ordered(api_server.api(http, app), buyer.token, {"brass-lamp": 1})
    assert not await mail_sent_to(ctx, buyer.user.email)

    worker = worker_process(database_url, tmp_path)
    worker.start()
    try:
        with logs_on_failure(api_server, worker):
            await poll(
                lambda: mail_sent_to(ctx, buyer.user.email),
                timeout=START_SECONDS,
                failure="the worker did not send the confirmation",
            )
            worker.terminate()
            assert await worker.wait_exit(EXIT_SECONDS) == 0
    finally:
        stop_all(worker)
    [started] = logged_fields(worker, "worker_started")
    assert started["tasks"] == len(TASKS)
    # The run at start sent it, not one an interval later (the schedule's earliest turn,
    # its jitter taken off).
    runs = logged_fields(worker, "task_run")
    [first, *_] = [line for line in runs if line["task"] == "send-mail"]
    assert first["sent"] == 1
    assert logged_at(first) - logged_at(started) < interval_of("send-mail") * 0.95
    # The console backend prints the mail: the worker's, not the server's.
    assert f"#{order['id']}" in worker.log_path.read_text()
    assert f"#{order['id']}" not in api_server.log_path.read_text()


async def test_a_server_runs_the_periodic_tasks_by_default(
    ctx: AppContext, database_url: str, http: AsyncHTTPClient, tmp_path: Path
) -> None:
    server = ShopServer("default", server_settings(database_url), tmp_path)

    def tasks_run() -> set[str]:
        return {line["task"] for line in logged_fields(server, "task_run")}

    try:
        await server.start_and_wait(http)
        with logs_on_failure(server):
            # Each at start: the hourly purges too, not an hour later.
            await poll(
                lambda: tasks_run() == {task.name for task in TASKS},
                timeout=START_SECONDS,
                failure="not every task ran at start",
            )
    finally:
        stop_all(server)
    [listening] = logged_fields(server, "listening")
    assert listening["periodic_tasks"] == len(TASKS)


@pytest.mark.parametrize("command", ["worker", "serve"])
async def test_a_process_stopped_mid_send_finishes_the_run_before_it_exits(
    command: str,
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    api_server: ShopServer,
    database_url: str,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    await add_product(ctx, "brass-lamp", stock=5)
    buyer = await shopper(ctx)
    await ordered(api_server.api(http, app), buyer.token, {"brass-lamp": 1})
    smtp.hold()
    mail_settings = {"EMAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port)}
    process = (
        worker_process(database_url, tmp_path, **mail_settings)
        if command == "worker"
        # A server running the periodic tasks itself, as by default.
        else ShopServer("mailing", server_settings(database_url, **mail_settings), tmp_path)
    )
    try:
        if isinstance(process, ShopServer):
            await process.start_and_wait(http)
        else:
            process.start()
        with logs_on_failure(api_server, process):

            async def receiving() -> bool:
                return smtp.receiving.is_set()

            await poll(receiving, timeout=START_SECONDS, failure="no mail was sent")
            process.terminate()  # while the SMTP server holds its reply
            if isinstance(process, ShopServer):
                server = process
                # It has taken the signal in: from here it only waits for the run.
                await poll(
                    lambda: server.logged("shutting_down") > 0,
                    timeout=EXIT_SECONDS,
                    failure="the server did not start shutting down",
                )
            else:
                # The worker logs nothing at SIGTERM, so there is no line to wait for. A
                # slow wrong exit could get past this check, but not past the end of the
                # test: a send cut short leaves no message at the SMTP server.
                await asyncio.sleep(0.5)
            assert process.running, "the process exited in the middle of a send"
            smtp.release()
            assert await process.wait_exit(EXIT_SECONDS) == 0
    finally:
        smtp.release()
        stop_all(process)
    assert len(smtp.messages) == 1
    assert await mail_sent_to(ctx, buyer.user.email)
    assert not logged_fields(process, "task_failed")
