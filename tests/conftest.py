"""Test harness: a real database (SQLite file, or MariaDB from TEST_DATABASE_URL), a
real HTTP server per test, real SMTP (aiosmtpd) and, with TEST_REDIS_URL, real Redis.

Isolation is by cleaning, not by rollback: the schema is migrated once per session
and every table is emptied after each test. The app commits for real, publishes
after commit and runs tasks on their own sessions, and tests observe exactly that.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import uvloop
from argon2 import PasswordHasher
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy import MetaData, delete
from tornado.ioloop import IOLoop

import app.server as app_server
import core.security
from app.asyncapi import build_asyncapi
from app.cli import migrate
from app.context import create_context
from app.openapi import build_spec
from app.server import ShopApplication, make_app
from core.config import Settings
from core.context import AppContext
from core.db import make_engine
from models import Base
from tests.client import ApiClient
from tests.smtp import SmtpServer

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
ON_MARIADB = (TEST_DATABASE_URL or "").startswith(("mysql", "mariadb"))
TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"

# Every test's loop is a uvloop one, as the server's is (app/cli.py).
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class IsolatedSettings(Settings):
    """Settings from keyword arguments only: the developer's environment never leaks in."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**overrides): Settings for this test's app")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked `mariadb` is skipped unless the suite runs on MariaDB: the marker
    is the skip, so `-m mariadb` selects exactly the tests an SQLite run leaves out."""
    if ON_MARIADB:
        return
    skip = pytest.mark.skip(reason="MariaDB only: set TEST_DATABASE_URL to MariaDB to run it")
    for item in items:
        if item.get_closest_marker("mariadb") is not None:
            item.add_marker(skip)


def pytest_report_header() -> list[str]:
    return [
        f"database: {'MariaDB/MySQL (TEST_DATABASE_URL)' if TEST_DATABASE_URL else 'SQLite'}",
        f"redis: {'TEST_REDIS_URL' if TEST_REDIS_URL else 'in-memory cache, limits and pub/sub'}",
    ]


def _built_once(build: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """`build` for the same routes and arguments computed once (the app only serves
    what it returns, never changes it)."""
    built: dict[Any, dict[str, Any]] = {}

    def once(routes: list[tuple[str, type, str]], **kwargs: Any) -> dict[str, Any]:
        key = (tuple(routes), tuple(sorted(kwargs.items())))
        if key not in built:
            built[key] = build(routes, **kwargs)
        return built[key]

    return once


@pytest.fixture(scope="session", autouse=True)
def in_process_start_up_costs() -> Iterator[None]:
    """What costs every in-process test a few hundred milliseconds of CPU without being
    what it tests: the OpenAPI and AsyncAPI documents, built from the same routes by
    each app, are built once; passwords are hashed with Argon2id at its lowest cost
    (the same algorithm and code path; a hash records its own cost, so verifying works
    alike). Processes the tests start (tests/processes.py) keep the real figures."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app_server, "build_spec", _built_once(build_spec))
        patch.setattr(app_server, "build_asyncapi", _built_once(build_asyncapi))
        patch.setattr(core.security, "_hasher", cheap)
        patch.setattr(core.security, "_DUMMY_HASH", cheap.hash("timing-equaliser"))
        yield


async def _drop_everything(url: str) -> None:
    engine = make_engine(url, timeout=None)
    async with engine.begin() as connection:

        def drop(sync_connection: Any) -> None:
            existing = MetaData()
            existing.reflect(sync_connection)
            existing.drop_all(sync_connection)

        await connection.run_sync(drop)
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly migrated database for the whole session."""
    url = TEST_DATABASE_URL or f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db')}/test.db"

    def prepare() -> None:
        asyncio.run(_drop_everything(url))
        migrate(IsolatedSettings(debug=True, database_url=url))

    # In a thread of its own: asyncio.run() (here and in the migrations) unsets the
    # thread's event loop, which would orphan a test's loop when a module that uses its
    # own database ran first and this fixture is first needed inside a test's set-up.
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(prepare).result()
    return url


def build_settings(database_url: str, overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "debug": False,
        "secret_key": TEST_SECRET_KEY,
        "database_url": database_url,
        "redis_url": TEST_REDIS_URL,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return IsolatedSettings(**values)


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    """Test settings; a test changes them with @pytest.mark.settings(name=value).

    A test that uses the `smtp` fixture gets an app that sends its mail there.
    """
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    if "smtp" in request.fixturenames:
        overrides.update(request.getfixturevalue("smtp").settings())
    return build_settings(database_url, overrides)


async def clean_database(ctx: AppContext) -> None:
    async with ctx.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(delete(table))


@pytest.fixture
def ctx(io_loop: IOLoop, settings: Settings, database_url: str) -> Iterator[AppContext]:
    context = create_context(settings)

    async def reset_shared_state() -> None:
        if context.redis is not None and settings.redis_url == TEST_REDIS_URL:
            await context.redis.flushdb()

    io_loop.run_sync(reset_shared_state)
    io_loop.run_sync(context.start)
    yield context

    async def teardown() -> None:
        if settings.database_url == database_url:  # not when a test pointed elsewhere
            await clean_database(context)
        await reset_shared_state()
        await context.close()

    io_loop.run_sync(teardown)


@pytest.fixture
def app(ctx: AppContext) -> ShopApplication:
    return make_app(ctx)


@pytest.fixture
def client(http_server_client: Any, app: ShopApplication) -> ApiClient:
    return ApiClient(http_server_client, app)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on loopback that records what it receives."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
