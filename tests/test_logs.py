"""Structured logs: JSON lines, an access line per request, never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from core.context import AppContext
from core.logs import configure_logging
from core.mail import ConsoleMailBackend, build_message
from tests.client import ApiClient
from tests.factories import DEFAULT_PASSWORD, log_in


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Configure JSON logging for the test; yields a function returning the lines so far."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO", "json")

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]

    yield lines
    structlog.reset_defaults()
    root.handlers, root.level = saved[0], saved[1]
    logging.getLogger("tornado.access").disabled = False


async def test_each_request_writes_one_json_access_line(client: ApiClient, json_logs: Any) -> None:
    await client.get("ops:health", headers={"X-Request-ID": "req-42"})
    [line] = [line for line in json_logs() if line["event"] == "request"]
    assert line["request_id"] == "req-42"
    assert line["method"] == "GET"
    assert line["path"] == "/health"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert line["level"] == "info"


async def test_no_password_or_token_reaches_the_logs(
    client: ApiClient, ctx: AppContext, json_logs: Any
) -> None:
    session = await log_in(client, ctx, "ada@example.com")
    await client.get("auth:me", token=session.token, query=f"token={session.token}")
    await client.post("auth:refresh", json={"refresh_token": session.refresh_token})
    structlog.get_logger().info(
        "diagnostic", password=DEFAULT_PASSWORD, headers={"Authorization": session.token}
    )
    text = json.dumps(json_logs())
    for secret in (DEFAULT_PASSWORD, session.token, session.refresh_token):
        assert secret not in text
    assert "[redacted]" in text


async def test_console_mail_goes_to_its_stream_and_only_its_envelope_to_the_log(
    json_logs: Any,
) -> None:
    stream = io.StringIO()
    body = "Your code: token-abc-123"
    message = build_message(
        sender="shop@example.com", recipient="a@example.com", subject="Hi", body=body
    )
    await ConsoleMailBackend(stream).send(message)
    [line] = [line for line in json_logs() if line["event"] == "mail_console"]
    assert (line["to"], line["subject"]) == ("a@example.com", "Hi")
    assert "token-abc-123" not in json.dumps(line)
    assert "token-abc-123" in stream.getvalue()
