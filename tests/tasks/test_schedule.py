"""PeriodicTasks: the runs in flight at shutdown finish, within a bound."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from core.context import AppContext
from tasks import PeriodicTask, PeriodicTasks
from tests.processes import poll

WAIT = 5.0


async def test_stopping_waits_for_a_run_in_flight(ctx: AppContext) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(_ctx: AppContext) -> None:
        started.set()
        await asyncio.sleep(0.2)  # the run's own work
        finished.set()

    periodic = PeriodicTasks(ctx, [PeriodicTask("slow", 3600, slow)]).start(run_now=True)
    await asyncio.wait_for(started.wait(), WAIT)
    await periodic.stop(timeout=5)
    assert finished.is_set()


async def test_a_run_outlasting_the_bound_is_cancelled_and_logged(ctx: AppContext) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(_ctx: AppContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    periodic = PeriodicTasks(ctx, [PeriodicTask("stuck", 3600, stuck)]).start(run_now=True)
    await asyncio.wait_for(started.wait(), WAIT)
    with capture_logs() as logs:
        await periodic.stop(timeout=0.1)
    assert cancelled.is_set()
    assert [entry["runs"] for entry in logs if entry["event"] == "tasks_cut_at_shutdown"] == [1]


async def test_no_run_starts_once_stopped(ctx: AppContext) -> None:
    runs = {"stopped": 0, "witness": 0}

    def counting(name: str) -> PeriodicTask:
        async def count(_ctx: AppContext) -> None:
            runs[name] += 1

        return PeriodicTask(name, 0.01, count)

    periodic = PeriodicTasks(ctx, [counting("stopped")]).start()
    await poll(lambda: runs["stopped"] > 0, timeout=WAIT, failure="the task never ran")
    await periodic.stop(timeout=1)
    stopped_at = runs["stopped"]
    # A witness on the same schedule: once it has run five times, the stopped task has
    # had five chances to run too.
    witness = PeriodicTasks(ctx, [counting("witness")]).start()
    await poll(lambda: runs["witness"] >= 5, timeout=WAIT, failure="the witness did not run")
    await witness.stop(timeout=1)
    assert stopped_at > 0
    assert runs["stopped"] == stopped_at
