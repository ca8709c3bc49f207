"""The Tornado application factory and the `serve` entry point."""

from __future__ import annotations

import asyncio
import gc
import signal
from typing import Any

import structlog
import tornado.web
from tornado.httputil import HTTPServerRequest

from app.asyncapi import build_asyncapi
from app.openapi import build_spec
from core.context import AppContext
from core.i18n import load_translations
from core.logs import request_ids
from core.websocket import GOING_AWAY
from handlers import api_routes, make_url_specs
from handlers.routing import NotFoundHandler, route
from tasks import PeriodicTasks

log = structlog.get_logger("shop.http")
TITLE = "Shop API"
VERSION = "1.0.0"
# Time given to requests in flight and closing websockets at SIGTERM (exit within 10 s).
SHUTDOWN_SECONDS = 8


class ShopApplication(tornado.web.Application):
    def __init__(self, ctx: AppContext, handlers: list[Any], **settings: Any) -> None:
        super().__init__(
            handlers,
            default_handler_class=NotFoundHandler,
            default_handler_args={"ctx": ctx},
            **settings,
        )
        self.ctx = ctx

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        """The route's handler, or the refusal of its method or body (handlers/routing.py)."""
        # Trailing slashes are optional on every path: route on the path without one.
        if len(request.path) > 1 and request.path.endswith("/"):
            request.path = request.path.rstrip("/") or "/"
        return route(self, self.ctx, request, super().find_handler(request, **kwargs))


def make_app(ctx: AppContext) -> ShopApplication:
    load_translations()
    routes = api_routes()
    documents = {
        "ops:openapi": build_spec(routes, title=TITLE, version=VERSION),
        "ops:asyncapi": build_asyncapi(routes, title=TITLE, version=VERSION),
    }
    return ShopApplication(
        ctx,
        make_url_specs(ctx, documents),
        shop_debug=ctx.settings.debug,
        shop_origins=frozenset(ctx.settings.origins),
        shop_request_ids=request_ids(),
        log_function=lambda handler: _log_request(ctx, handler),
        websocket_ping_interval=ctx.settings.ws_ping_interval,
        websocket_ping_timeout=ctx.settings.ws_ping_timeout,
    )


def _log_request(ctx: AppContext, handler: tornado.web.RequestHandler) -> None:
    """One access line per request (path only: query strings may carry tokens)."""
    request = handler.request
    status = handler.get_status()
    duration = request.request_time()
    ctx.metrics.observe_request(type(handler).__name__, request.method or "", status, duration)
    log.info(
        "request",
        request_id=getattr(handler, "request_id", None),
        method=request.method,
        path=request.path,
        status=status,
        duration_ms=round(duration * 1000, 2),
    )


async def serve(ctx: AppContext) -> None:
    """Serve until SIGINT/SIGTERM, then shut down within SHUTDOWN_SECONDS: stop
    accepting, close every websocket with 1001, let requests and task runs in flight
    finish, stop."""
    settings = ctx.settings
    app = make_app(ctx)
    await ctx.start()
    server = app.listen(
        settings.port,
        address=settings.host,
        xheaders=settings.trust_proxy_headers,
    )
    # What start-up built (routes, schemas, SQLAlchemy's metadata, translations) lives as
    # long as the process: out of the collector's reach, it is not scanned again by every
    # full collection, which request garbage triggers a few times a second under load.
    gc.freeze()
    periodic = PeriodicTasks(ctx)
    if settings.periodic_tasks:
        periodic.start()
    stop = _stop_requested()
    log.info("listening", host=settings.host, port=settings.port, periodic_tasks=len(periodic))
    _print_addresses(f"http://{settings.host}:{settings.port}")
    await stop.wait()
    log.info("shutting_down", sockets=len(ctx.sockets), requests=ctx.requests_in_flight)
    server.stop()
    ctx.sockets.close_all(GOING_AWAY, "server shutting down")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHUTDOWN_SECONDS
    await periodic.stop(SHUTDOWN_SECONDS)
    while (ctx.requests_in_flight or len(ctx.sockets)) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    try:
        await asyncio.wait_for(server.close_all_connections(), max(0.1, deadline - loop.time()))
    except TimeoutError:
        log.warning("shutdown_cut_connections")


async def work(ctx: AppContext) -> None:
    """Run the periodic tasks, each at once and then on its schedule, until SIGINT or
    SIGTERM (then let runs in flight finish within SHUTDOWN_SECONDS): for servers
    started with PERIODIC_TASKS=false."""
    stop = _stop_requested()
    periodic = PeriodicTasks(ctx).start()
    log.info("worker_started", tasks=len(periodic))
    await stop.wait()
    await periodic.stop(SHUTDOWN_SECONDS)


def _stop_requested() -> asyncio.Event:
    """An event set at SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def _print_addresses(base: str) -> None:
    """Where a person starts: printed plainly, outside the JSON log."""
    print(
        f"Shop API on {base}\n"
        f"  API docs:        {base}/docs\n"
        f"  order tracking:  {base}/track\n"
        f"  realtime schema: {base}/asyncapi.json",
        flush=True,
    )
