"""structlog set-up: JSON lines (or console), request id bound per request.

Secrets are scrubbed by key name before any line is written, whoever logs them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

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
        event[key] = REDACTED if _is_secret(key) else _scrub(event[key])
    return event


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
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
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
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


def init_sentry(dsn: str | None) -> None:
    """Forward errors to Sentry when a DSN is configured."""
    if not dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.tornado import TornadoIntegration

    # send_default_pii=False keeps headers, cookies and bodies out of Sentry events.
    sentry_sdk.init(dsn=dsn, integrations=[TornadoIntegration()], send_default_pii=False)
