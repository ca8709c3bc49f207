"""PeriodicTasks: the runs in flight at shutdown finish, within a bound."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from core.context import AppContext
from tasks import PeriodicTask, PeriodicTasks


async def test_stopping_waits_for_a_run_in_flight(ctx: AppContext) -> None:
    finished = asyncio.Event()

    async def slow(_ctx: AppContext) -> None:
        await asyncio.sleep(0.2)
        finished.set()

    periodic = PeriodicTasks(ctx, [PeriodicTask("slow", 3600, slow)]).start(run_now=True)
    await asyncio.sleep(0)  # the first run starts
    await periodic.stop(timeout=5)
    assert finished.is_set()


async def test_a_run_outlasting_the_bound_is_cancelled_and_logged(ctx: AppContext) -> None:
    cancelled = asyncio.Event()

    async def stuck(_ctx: AppContext) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    periodic = PeriodicTasks(ctx, [PeriodicTask("stuck", 3600, stuck)]).start(run_now=True)
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await periodic.stop(timeout=0.1)
    assert cancelled.is_set()
    assert [entry["runs"] for entry in logs if entry["event"] == "tasks_cut_at_shutdown"] == [1]


async def test_no_run_starts_once_stopped(ctx: AppContext) -> None:
    runs = 0

    async def count(_ctx: AppContext) -> None:
        nonlocal runs
        runs += 1

    periodic = PeriodicTasks(ctx, [PeriodicTask("count", 0.01, count)]).start()
    await asyncio.sleep(0.1)
    await periodic.stop(timeout=1)
    stopped_at = runs
    await asyncio.sleep(0.1)
    assert stopped_at > 0
    assert runs == stopped_at
