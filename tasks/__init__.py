"""Periodic tasks: the registry the server schedules and the CLI exposes.

Each task opens its own sessions and calls a service; every one is safe to run
from several processes at once (the services use guarded updates).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from tornado.ioloop import IOLoop, PeriodicCallback

from app.context import AppContext
from tasks import carts, mail, orders, tokens

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PeriodicTask:
    name: str  # also the CLI command: python -m app <name>
    interval_seconds: float
    run: Callable[[AppContext], Awaitable[Any]]


TASKS: list[PeriodicTask] = [
    PeriodicTask("send-mail", 5, mail.send_mail),
    PeriodicTask("purge-tokens", 3600, tokens.purge_tokens),
    PeriodicTask("purge-carts", 3600, carts.purge_carts),
    PeriodicTask("expire-orders", 60, orders.expire_orders),
]


def start_periodic_tasks(ctx: AppContext, *, run_now: bool = False) -> list[PeriodicCallback]:
    """Schedule every task on the running loop, a first run at once when `run_now`;
    stop the returned callbacks to end them."""
    callbacks = []
    for task in TASKS:

        async def run_logged(task: PeriodicTask = task) -> None:
            try:
                result = await task.run(ctx)
            except Exception:  # a failing run must not stop later runs
                log.exception("task_failed", task=task.name)
                return
            if result:
                log.info("task_ran", task=task.name, result=result)

        if run_now:
            IOLoop.current().add_callback(run_logged)
        callback = PeriodicCallback(run_logged, task.interval_seconds * 1000, jitter=0.1)
        callback.start()
        callbacks.append(callback)
    return callbacks
