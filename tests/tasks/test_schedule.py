"""PeriodicTasks: each task runs at start and then on its schedule, one at a time; every
run says what it did in one log line and in the metrics; the runs in flight at shutdown
finish, within a bound."""

from __future__ import annotations

import asyncio
import time

from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from core.context import AppContext
from tasks import PeriodicTask, PeriodicTasks, TaskResult
from tests.client import ApiClient
from tests.processes import poll

WAIT = 5.0
RUNS, FAILURES = "shop_task_runs_total", "shop_task_failures_total"
LAST_SUCCESS = "shop_task_last_success_timestamp_seconds"


def counting(runs: dict[str, int], name: str, interval: float) -> PeriodicTask:
    """A task that counts its runs in `runs[name]`."""
    runs.setdefault(name, 0)

    async def count(_ctx: AppContext) -> TaskResult:
        runs[name] += 1
        return {"counted": 1}

    return PeriodicTask(name, interval, count)


async def scraped(client: ApiClient, sample: str, task: str) -> float | None:
    """A task's sample as GET /metrics shows it; None when it is not there."""
    response = await client.get("ops:metrics")
    assert response.status == 200
    for family in text_string_to_metric_families(response.body.decode()):
        for found in family.samples:
            if found.name == sample and found.labels == {"task": task}:
                return float(found.value)
    return None


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


async def test_every_run_logs_one_line_saying_what_it_did(ctx: AppContext) -> None:
    sends = 0

    async def send(_ctx: AppContext) -> TaskResult:
        nonlocal sends
        sends += 1
        return {"sent": 3, "failed": 0}

    async def idle(_ctx: AppContext) -> TaskResult:
        return {"deleted": 0}

    tasks = [PeriodicTask("send", 0.05, send), PeriodicTask("idle", 3600, idle)]
    with capture_logs() as logs:
        periodic = PeriodicTasks(ctx, tasks).start()
        await poll(lambda: sends >= 3, timeout=WAIT, failure="the task did not run three times")
        await periodic.stop(timeout=WAIT)

    lines = [entry for entry in logs if entry.get("task") in {"send", "idle"}]
    assert {(entry["event"], entry["log_level"]) for entry in lines} == {("task_run", "info")}
    sent = [entry for entry in lines if entry["task"] == "send"]
    assert len(sent) == sends
    assert all((entry["sent"], entry["failed"]) == (3, 0) for entry in sent)
    [nothing_due] = [entry for entry in lines if entry["task"] == "idle"]
    assert nothing_due["deleted"] == 0
    assert all(entry["duration_ms"] >= 0 for entry in lines)


async def test_a_failing_run_logs_task_failed_alone_and_later_runs_go_on(ctx: AppContext) -> None:
    attempts = 0

    async def broken(_ctx: AppContext) -> TaskResult:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("the mail server is away")

    with capture_logs() as logs:
        periodic = PeriodicTasks(ctx, [PeriodicTask("broken", 0.05, broken)]).start()
        await poll(lambda: attempts >= 2, timeout=WAIT, failure="the task did not run again")
        await periodic.stop(timeout=WAIT)

    lines = [entry["event"] for entry in logs if entry.get("task") == "broken"]
    assert lines == ["task_failed"] * attempts


async def test_metrics_show_runs_failures_and_the_last_success(
    ctx: AppContext, client: ApiClient
) -> None:
    state = {"broken": False, "succeeded": 0, "failed": 0}

    async def flaky(_ctx: AppContext) -> TaskResult:
        if state["broken"]:
            state["failed"] += 1
            raise RuntimeError("the database is away")
        state["succeeded"] += 1
        return {"done": 1}

    async def metric_at_least(sample: str, value: float) -> bool:
        return (await scraped(client, sample, "flaky") or 0) >= value

    began = time.time()
    periodic = PeriodicTasks(ctx, [PeriodicTask("flaky", 0.05, flaky)]).start()
    try:
        await poll(lambda: metric_at_least(RUNS, 2), timeout=WAIT, failure="no runs counted")
        assert await scraped(client, FAILURES, "flaky") == 0
        succeeded_at = await scraped(client, LAST_SUCCESS, "flaky")
        assert succeeded_at is not None and began <= succeeded_at <= time.time()

        state["broken"] = True
        await poll(lambda: metric_at_least(FAILURES, 1), timeout=WAIT, failure="no failure")
        # Runs never overlap: from the first failure on, every run fails.
        last_success = await scraped(client, LAST_SUCCESS, "flaky")
        await poll(lambda: metric_at_least(FAILURES, 3), timeout=WAIT, failure="no failures")
    finally:
        await periodic.stop(timeout=WAIT)

    assert await scraped(client, LAST_SUCCESS, "flaky") == last_success
    assert await scraped(client, FAILURES, "flaky") == state["failed"]
    assert await scraped(client, RUNS, "flaky") == state["succeeded"] + state["failed"]


async def test_a_run_still_going_when_its_turn_comes_again_is_not_doubled(
    ctx: AppContext,
) -> None:
    release = asyncio.Event()
    slow_runs = in_flight = most_in_flight = 0

    async def slow(_ctx: AppContext) -> TaskResult:
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

    async def slow(_ctx: AppContext) -> TaskResult:
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

    async def stuck(_ctx: AppContext) -> TaskResult:
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
    assert not [entry for entry in logs if entry.get("task") == "stuck"]


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
