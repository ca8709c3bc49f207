"""The one error envelope for failures the handlers do not expect."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.server import ShopApplication, make_app
from core.context import AppContext
from core.db import DatabaseTimeout
from handlers.base import BaseHandler
from tests.client import ApiClient
from tests.handlers.test_ops import assert_security_headers


class ExplodingHandler(BaseHandler):
    """Stands for any handler with a bug: raises an unexpected exception."""

    async def get(self) -> None:
        raise RuntimeError("secret internals: do not show me")


class DatabaseWaitHandler(BaseHandler):
    """Stands for a handler whose wait on the database ran out (raises `error`)."""

    def initialize(self, ctx: AppContext, error: Exception) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.error = error

    async def get(self) -> None:
        raise self.error


@pytest.fixture
def app(ctx: AppContext) -> ShopApplication:
    application = make_app(ctx)
    no_answer = {"ctx": ctx, "error": DatabaseTimeout("no answer within 5 s")}
    no_connection = {"ctx": ctx, "error": PoolTimeout("QueuePool limit reached")}
    application.add_handlers(
        r".*",
        [
            (r"/explode$", ExplodingHandler, {"ctx": ctx}),
            (r"/no-answer$", DatabaseWaitHandler, no_answer),
            (r"/no-connection$", DatabaseWaitHandler, no_connection),
        ],
    )
    return application


async def test_an_unexpected_exception_is_a_json_500_without_internals(
    client: ApiClient,
) -> None:
    response = await client.get("/explode")
    assert response.status == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "Something went wrong on our side. Please try again later.",
        }
    }
    assert b"secret internals" not in response.body
    assert_security_headers(response.headers)


@pytest.mark.settings(debug=True)
async def test_debug_mode_adds_the_traceback_to_a_500(client: ApiClient) -> None:
    response = await client.get("/explode")
    assert response.status == 500
    assert "secret internals" in "".join(response.json()["error"]["traceback"])
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.settings(database_url="mysql+aiomysql://nobody@127.0.0.1:1/none")
async def test_an_unreachable_database_is_503_with_retry_after(client: ApiClient) -> None:
    response = await client.post(
        "auth:login", json={"email": "a@example.com", "password": "whatever-password"}
    )
    assert response.status == 503
    assert response.error_code == "service_unavailable"
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("path", ["/no-answer", "/no-connection"])
async def test_a_database_wait_that_runs_out_is_503_with_retry_after(
    client: ApiClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status == 503
    assert response.error_code == "service_unavailable"
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    "send",
    [
        lambda client: client.get("auth:me", token="x.y.z"),
        lambda client: client.post("auth:login", json={"email": 1}),
        lambda client: client.get("/nowhere"),
    ],
    ids=["401", "400", "404"],
)
async def test_every_error_has_code_and_message_only_plus_fields_for_validation(
    client: ApiClient, send: Callable[[ApiClient], object]
) -> None:
    response = await send(client)  # type: ignore[misc]
    error = response.json()["error"]
    assert set(error) <= {"code", "message", "fields"}
    assert error["code"] and error["message"]
    assert ("fields" in error) == (error["code"] == "validation_error")


async def test_no_body_is_an_empty_object(client: ApiClient) -> None:
    """Required fields are named; a body whose fields all have defaults may be left out."""
    response = await client.post("auth:login", body=b"")
    assert (response.status, response.error_code) == (400, "validation_error")
    assert set(response.json()["error"]["fields"]) == {"email", "password"}
