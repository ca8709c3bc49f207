"""README's walk-through ("A first order, end to end") runs as written.

The shell block is taken from README.md as it stands, pointed at a real server started
the way `make run` starts one (DEBUG on: fake payments, documented demo passwords, the
demo catalogue seeded), and run with bash. Then the orders it made are checked.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop

from core.context import AppContext
from models.orders import Order
from tests.order_factories import stock_of, timeline
from tests.processes import ROOT, ShopServer, logs_on_failure, server_settings, stop_all

pytestmark = pytest.mark.subprocess
MARKER = "<!-- walkthrough:"
BASE_URL = "http://127.0.0.1:8888"
SCRIPT_SECONDS = 60


def walkthrough() -> str:
    """The first ```sh block after the marker comment in README.md."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(re.escape(MARKER) + r".*?\n```sh\n(.*?)\n```", readme, re.DOTALL)
    assert found, "README.md has no walk-through block"
    return found.group(1)


@pytest.fixture
def server(
    ctx: AppContext,  # set up first, so the process stops before it empties the tables
    database_url: str,
    io_loop: IOLoop,
    tmp_path: Any,
) -> Iterator[ShopServer]:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.skip("the walk-through needs curl and bash on PATH")
    settings = server_settings(database_url, DEBUG="true")
    seed = [sys.executable, "-m", "app", "seed-demo"]
    subprocess.run(seed, env={**settings, "PATH": os.environ["PATH"]}, cwd=ROOT, check=True)
    process = ShopServer("walkthrough", settings, tmp_path)
    http = AsyncHTTPClient(force_instance=True)
    try:
        io_loop.run_sync(lambda: process.start_and_wait(http))
        yield process
    finally:
        http.close()
        stop_all(process)


async def test_the_readme_walkthrough_runs_as_written(server: ShopServer, ctx: AppContext) -> None:
    script = walkthrough()
    assert BASE_URL in script
    stock_before = await stock_of(ctx, "brass-desk-lamp")

    shell = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script.replace(BASE_URL, server.url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(shell.communicate(), SCRIPT_SECONDS)

    with logs_on_failure(server):
        transcript = output.decode()
        assert shell.returncode == 0, transcript
        assert '"code": "conflict"' in transcript  # the shipped order refused to cancel
        async with ctx.sessionmaker() as session:
            first, second = (await session.scalars(select(Order).order_by(Order.id))).all()
        assert first.status == "shipped"
        assert first.discount_code == "WELCOME10"
        assert first.discount_total_cents == first.subtotal_cents // 10
        assert first.shipping_address["name"] == "Ada Lovelace"
        assert await timeline(ctx, first.id) == ["pending_payment", "paid", "processing", "shipped"]
        assert second.status == "cancelled"
        # Two lamps went with the shipped order; the cancelled one's came back.
        assert await stock_of(ctx, "brass-desk-lamp") == stock_before - 2
