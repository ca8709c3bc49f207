"""python -m app: the commands an operator runs."""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 - runs this project's own CLI
import sys
from pathlib import Path

import pytest

from core.context import AppContext
from tests.client import ApiClient
from tests.conftest import TEST_SECRET_KEY
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.subprocess
ROOT = Path(__file__).resolve().parent.parent


def run_cli(ctx: AppContext, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": ctx.settings.database_url,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    environment.pop("REDIS_URL", None)
    return subprocess.run(  # nosec B603 - fixed arguments
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_create_staff_makes_a_staff_user_who_can_log_in(
    client: ApiClient, ctx: AppContext
) -> None:
    result = run_cli(
        ctx, "create-staff", "--email", "Boss@Example.com", STAFF_PASSWORD=DEFAULT_PASSWORD
    )
    assert result.returncode == 0, result.stderr
    assert "boss@example.com" in result.stdout
    login = await client.post(
        "auth:login", json={"email": "boss@example.com", "password": DEFAULT_PASSWORD}
    )
    me = await client.get("auth:me", token=login.json()["access_token"])
    assert me.json()["is_staff"] is True


async def test_create_staff_refuses_a_weak_password(ctx: AppContext) -> None:
    result = run_cli(ctx, "create-staff", "--email", "boss@example.com", STAFF_PASSWORD="123")
    assert result.returncode == 1
    assert "too short" in result.stderr


async def test_each_periodic_task_runs_once_from_the_command_line(ctx: AppContext) -> None:
    for command in ("send-mail", "purge-tokens"):
        result = run_cli(ctx, command)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "nothing to do"


async def test_a_task_run_from_the_command_line_logs_its_line(ctx: AppContext) -> None:
    result = run_cli(ctx, "send-mail", LOG_LEVEL="INFO")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    [run] = [record for record in records if record["event"] == "task_run"]
    assert (run["task"], run["sent"], run["failed"]) == ("send-mail", 0, 0)
    assert result.stdout.splitlines()[-1] == "nothing to do"


async def test_a_task_failing_from_the_command_line_logs_task_failed_and_exits_1(
    ctx: AppContext, tmp_path: Path
) -> None:
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"  # no tables: the purge fails
    result = run_cli(ctx, "purge-tokens", LOG_LEVEL="INFO", DATABASE_URL=empty)
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [record["task"] for record in records if record["event"] == "task_failed"] == [
        "purge-tokens"
    ]
    assert not [record for record in records if record["event"] == "task_run"]


async def test_migrate_is_idempotent(ctx: AppContext) -> None:
    result = run_cli(ctx, "migrate")
    assert result.returncode == 0, result.stderr
