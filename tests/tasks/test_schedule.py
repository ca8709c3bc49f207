"""PeriodicTasks: each task runs at start and then on its schedule, one at a time; the
runs in flight at shutdown finish, within a bound."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from core.context import AppContext
from tasks import PeriodicTask, PeriodicTasks
from tests.processes import poll

WAIT = 5.0


def counting(runs: dict[str, int], name: str, interval: float) -> PeriodicTask:
    """A task that counts its runs in `runs[name]`."""
    runs.setdefault(name, 0)

    async def count(_ctx: AppContext) -> dict[str, int]:
        runs[name] += 1
        return {"counted": 1}

    return PeriodicTask(name, interval, count)


async def test_each_task_runs_at_start_then_on_its_schedule(ctx: AppContext) -> None:
    runs: dict[str, int] = {}
    periodic = PeriodicTasks(
        ctx, [counting(runs, "hourly", 3600), counting(runs, "often", 0.05)]
    ).start()
    try:
        await poll(
            lambda: runs["hourly"] == 1 and runs["often"] >= 3,
            timeout=WAIT,
            failure="the hourly task did not run at start, or the other not on its schedule",
        )
    finally:
        await periodic.stop(timeout=1)
    assert runs["hourly"] == 1


async def test_a_run_still_going_when_its_turn_comes_again_is_not_doubled(
    ctx: AppContext,
) -> None:
    release = asyncio.Event()
    slow_runs = in_flight = most_in_flight = 0

    async def slow(_ctx: AppContext) -> dict[str, int]:
        nonlocal slow_runs, in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        try:
            await release.wait()
        finally:
            in_flight -= 1
        slow_runs += 1
        return {}

    runs: dict[str, int] = {}
    # The witness is on the same schedule: once it has run five times, the slow task's
    # turn has come round while its first run (the one at start) was still going.
    tasks = [PeriodicTask("slow", 0.01, slow), counting(runs, "witness", 0.01)]
    periodic = PeriodicTasks(ctx, tasks).start()
    try:
        await poll(lambda: runs["witness"] >= 5, timeout=WAIT, failure="the witness did not run")
        release.set()
        await poll(lambda: slow_runs >= 2, timeout=WAIT, failure="the slow task did not run again")
    finally:
        await periodic.stop(timeout=1)
    assert most_in_flight == 1


async def test_stopping_waits_for_a_run_in_flight(ctx: AppContext) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(_ctx: AppContext) -> dict[str, int]:
        started.set()
        await asyncio.sleep(0.2)  # the run's own work
        finished.set()
        return {}

    periodic = PeriodicTasks(ctx, [PeriodicTask("slow", 3600, slow)]).start()
    await asyncio.wait_for(started.wait(), WAIT)
    await periodic.stop(timeout=5)
    assert finished.is_set()


async def test_a_run_outlasting_the_bound_is_cancelled_and_logged(ctx: AppContext) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(_ctx: AppContext) -> dict[str, int]:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    periodic = PeriodicTasks(ctx, [PeriodicTask("stuck", 3600, stuck)]).start()
    await asyncio.wait_for(started.wait(), WAIT)
    with capture_logs() as logs:
        await periodic.stop(timeout=0.1)
    assert cancelled.is_set()
    assert [entry["runs"] for entry in logs if entry["event"] == "tasks_cut_at_shutdown"] == [1]


async def test_no_run_starts_once_stopped(ctx: AppContext) -> None:
    runs: dict[str, int] = {}
    periodic = PeriodicTasks(ctx, [counting(runs, "stopped", 0.01)]).start()
    await poll(lambda: runs["stopped"] > 0, timeout=WAIT, failure="the task never ran")
    await periodic.stop(timeout=1)
    stopped_at = runs["stopped"]
    # A witness on the same schedule: once it has run five times, the stopped task has
    # had five chances to run too.
    witness = PeriodicTasks(ctx, [counting(runs, "witness", 0.01)]).start()
    await poll(lambda: runs["witness"] >= 5, timeout=WAIT, failure="the witness did not run")
    await witness.stop(timeout=1)
    assert stopped_at > 0
    assert runs["stopped"] == stopped_at
