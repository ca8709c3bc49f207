"""Periodic tasks: the registry the server schedules and the CLI exposes.

Each task opens its own sessions and calls a service; every one is safe to run
from several processes at once (the services use guarded updates).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog
from tornado.ioloop import PeriodicCallback

from core.context import AppContext
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


class PeriodicTasks:
    """Every task run at once and then on its schedule on the running loop (`start`),
    and stopped with the runs in flight given time to finish (`stop`)."""

    def __init__(self, ctx: AppContext, tasks: Sequence[PeriodicTask] | None = None) -> None:
        self._ctx = ctx
        self._tasks = TASKS if tasks is None else tasks
        self._callbacks: list[PeriodicCallback] = []
        self._runs: dict[str, asyncio.Task[None]] = {}  # the run in flight, by task name

    def __len__(self) -> int:
        return len(self._callbacks)

    def start(self) -> PeriodicTasks:
        """Run every task now, then every `interval_seconds` (give or take 5%): a process
        restarted more often than a task's interval still runs it."""
        for task in self._tasks:
            self._run(task)
            callback = PeriodicCallback(
                partial(self._run, task), task.interval_seconds * 1000, jitter=0.1
            )
            callback.start()
            self._callbacks.append(callback)
        return self

    async def stop(self, timeout: float) -> None:
        """Schedule no more runs and wait up to `timeout` seconds for those in flight;
        cancel what is left (a mail batch cut short is sent again once its claim lapses)."""
        for callback in self._callbacks:
            callback.stop()
        runs = set(self._runs.values())
        if not runs:
            return
        _, unfinished = await asyncio.wait(runs, timeout=timeout)
        if unfinished:
            log.warning("tasks_cut_at_shutdown", runs=len(unfinished))
            for run in unfinished:
                run.cancel()
            await asyncio.wait(unfinished)

    def _run(self, task: PeriodicTask) -> asyncio.Task[None]:
        # A task of its own, so that stop() can wait for it. The callback awaits it, and
        # gets the run still in flight (the one at start, say) rather than a second one
        # beside it: one task's runs never overlap.
        run = self._runs.get(task.name)
        if run is None or run.done():
            run = asyncio.create_task(self._run_logged(task))
            self._runs[task.name] = run
            run.add_done_callback(partial(self._forget, task.name))
        return run

    def _forget(self, name: str, run: asyncio.Task[None]) -> None:
        if self._runs.get(name) is run:
            del self._runs[name]

    async def _run_logged(self, task: PeriodicTask) -> None:
        try:
            result = await task.run(self._ctx)
        except Exception:  # a failing run must not stop later runs
            log.exception("task_failed", task=task.name)
            return
        if result:
            log.info("task_ran", task=task.name, result=result)
