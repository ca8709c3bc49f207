"""structlog set-up: JSON lines (or console), request id bound per request, and the
optional forwarding of errors to Sentry.

Secrets are scrubbed by key name before any line is written or sent, whoever logs them.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog
from structlog_sentry import SentryProcessor

_SECRET_KEYS = ("password", "token", "authorization", "secret", "card", "cookie", "api_key")
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: REDACTED if _is_secret(key) else _scrub(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def _is_secret(key: Any) -> bool:
    lowered = str(key).lower()
    return any(secret in lowered for secret in _SECRET_KEYS)


def scrub_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if key != "exc_info":  # rendered (or sent to Sentry) by the processors after this
            event[key] = REDACTED if _is_secret(key) else _scrub(event[key])
    return event


def request_ids() -> Iterator[str]:
    """Ids for the requests that bring none: a random prefix per process (so ids from
    different processes and restarts do not meet) and a counter, far cheaper per
    request than a random id each."""
    prefix = secrets.token_hex(8)
    return (f"{prefix}-{number:x}" for number in itertools.count(1))


def configure_logging(level: str = "INFO", fmt: str = "json", *, sentry: bool = False) -> None:
    """`sentry`: every error-level line also becomes a Sentry event (with its traceback
    when it carries one), and lower ones its breadcrumbs; see `init_sentry`."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        scrub_secrets,
    ]
    # structlog prints its lines itself, past the standard logging hooks Sentry listens
    # on, so errors are handed to Sentry here (after scrubbing, before rendering).
    to_sentry = [SentryProcessor(event_level=logging.ERROR)] if sentry else []
    structlog.configure(
        processors=[*shared, *to_sentry, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(),  # sys.stdout, looked up per line
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library go through the same pipeline.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Tornado's own access log is replaced by ours (see handlers/base.py).
    logging.getLogger("tornado.access").disabled = True


def init_sentry(dsn: str) -> None:
    """Forward errors to Sentry: unhandled exceptions and error-level log lines (through
    `configure_logging(sentry=True)`), and standard-library log errors of libraries."""
    import sentry_sdk
    from sentry_sdk.integrations.tornado import TornadoIntegration

    sentry_sdk.init(
        dsn=dsn,
        integrations=[TornadoIntegration()],
        # serve() exits within 10 s of SIGTERM, up to 8 of them for requests in flight:
        # what is still unsent by then gets one more second.
        shutdown_timeout=1,
        # What Sentry may know of a request: its method, path and harmless headers.
        # Bodies (addresses, passwords), cookies, user identity and local variables
        # (tokens in flight) never leave; the SDK always filters auth headers and
        # `token` query values.
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {
                "request": {"mode": "denylist", "terms": ["forwarded", "-ip", "cookie"]}
            },
            "http_bodies": [],
            "database_query_data": False,  # statement values in query breadcrumbs
            "url_query_params": {"mode": "denylist", "terms": []},
            "stack_frame_variables": False,
        },
    )
