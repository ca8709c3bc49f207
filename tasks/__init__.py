"""Periodic tasks: the registry the server schedules and the CLI exposes.

Each task opens its own sessions and calls a service; every one is safe to run
from several processes at once (the services use guarded updates). A task's run
returns what it did as counts by name, every count present (zero when nothing was
due): `{"sent": 3, "failed": 0}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

import structlog
from tornado.ioloop import PeriodicCallback

from core.context import AppContext
from tasks import carts, mail, orders, tokens

log = structlog.get_logger(__name__)

TaskResult = dict[str, int]


@dataclass(frozen=True)
class PeriodicTask:
    name: str  # also the CLI command: python -m app <name>
    interval_seconds: float
    run: Callable[[AppContext], Awaitable[TaskResult]]


TASKS: list[PeriodicTask] = [
    PeriodicTask("send-mail", 5, mail.send_mail),
    PeriodicTask("purge-tokens", 3600, tokens.purge_tokens),
    PeriodicTask("purge-carts", 3600, carts.purge_carts),
    PeriodicTask("expire-orders", 60, orders.expire_orders),
]


async def run_once(ctx: AppContext, task: PeriodicTask) -> TaskResult:
    """Run `task` once and say so: one `task_run` line (its counts and `duration_ms`)
    and a run in the metrics with the time of this success; or, when it raises, one
    `task_failed` line with the traceback, a run and a failure in the metrics, and the
    error raised again. A run cancelled at shutdown logs and counts nothing here."""
    started = time.perf_counter()
    try:
        result = await task.run(ctx)
    except Exception:
        ctx.metrics.observe_task(task.name, succeeded=False)
        log.exception("task_failed", task=task.name, duration_ms=_since(started))
        raise
    ctx.metrics.observe_task(task.name, succeeded=True)
    log.info("task_run", task=task.name, **result, duration_ms=_since(started))
    return result


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


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
        self._ctx.metrics.expect_tasks([task.name for task in self._tasks])
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
        # run_once has logged the failure; it must not stop later runs.
        with contextlib.suppress(Exception):
            await run_once(self._ctx, task)
