"""How the application answers requests that no route's handler should see: unknown
paths (404), methods a route does not answer (405 with `Allow`) and bodies over
MAX_BODY_SIZE (413), each decided from the request line and headers (for a chunked body,
from the first bytes past the limit).

Every route answers the methods its handler class defines, plus HEAD wherever it defines
GET (BaseHandler answers HEAD with its GET, less the body). A body over the limit is
answered 413 before any more of it is read, whatever its size, and the connection closes
once the answer is sent.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import tornado.web
from tornado import httputil
from tornado.http1connection import HTTP1Connection

from core import errors
from core.config import Settings
from core.context import AppContext
from core.private_apis import HandlerDelegate
from handlers.base import CORS_REQUEST_HEADERS, BaseHandler

# Tornado's own body limit is lifted for every request: this module enforces
# MAX_BODY_SIZE in its place. Tornado's would answer a bare, headerless 400, and it
# checks a declared length or chunk size before any byte reaches the application.
_NO_TORNADO_LIMIT = sys.maxsize
# How long a browser may reuse a preflight's answer, in seconds.
PREFLIGHT_MAX_AGE = 600


@cache  # a class's methods do not change: worked out once, not per request
def allowed_methods(handler_class: type[tornado.web.RequestHandler]) -> tuple[str, ...]:
    """The methods the handler class defines, plus HEAD where it defines GET."""
    defined = [
        method
        for method in handler_class.SUPPORTED_METHODS
        if method != "HEAD" and _defines(handler_class, method.lower())
    ]
    if "GET" in defined:
        defined.insert(defined.index("GET") + 1, "HEAD")
    return tuple(defined)


def _defines(handler_class: type[tornado.web.RequestHandler], name: str) -> bool:
    return getattr(handler_class, name) is not getattr(tornado.web.RequestHandler, name)


class NotFoundHandler(BaseHandler):
    """Answers every unknown path with the JSON 404 envelope."""

    async def prepare(self) -> None:
        raise errors.NotFound()


class PreflightHandler(BaseHandler):
    """A CORS preflight from an origin in ALLOWED_ORIGINS: 204 saying which methods and
    headers the route takes (BaseHandler adds the Allow-Origin header)."""

    def initialize(  # type: ignore[override]
        self, ctx: AppContext, allowed: tuple[str, ...]
    ) -> None:
        super().initialize(ctx)
        self.allowed = allowed

    async def options(self) -> None:
        self.set_header("Access-Control-Allow-Methods", ", ".join(self.allowed))
        self.set_header("Access-Control-Allow-Headers", CORS_REQUEST_HEADERS)
        self.set_header("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE))
        self.no_content()


class MethodNotAllowedHandler(BaseHandler):
    """Answers a method the route does not answer: 405 listing those it does in `Allow`."""

    def initialize(  # type: ignore[override]
        self, ctx: AppContext, allowed: tuple[str, ...]
    ) -> None:
        super().initialize(ctx)
        self.allowed = allowed

    async def prepare(self) -> None:
        raise errors.MethodNotAllowed()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Allow", ", ".join(self.allowed))  # after send_error cleared headers
        super().write_error(status_code, **kwargs)


@tornado.web.stream_request_body
class PayloadTooLargeHandler(BaseHandler):
    """Answers 413 as soon as it runs. It streams, so Tornado runs it once the headers are
    in, and reads no more of the body once it has answered."""

    async def prepare(self) -> None:
        raise errors.PayloadTooLarge()

    def data_received(self, chunk: bytes) -> None:
        """The body is never looked at."""


def route(
    application: tornado.web.Application,
    ctx: AppContext,
    request: httputil.HTTPServerRequest,
    delegate: HandlerDelegate,
) -> httputil.HTTPMessageDelegate:
    """The delegate that answers `request`, which the application routed to `delegate`:
    the route's own, or one that refuses the method or the body."""
    if isinstance(request.connection, HTTP1Connection):
        request.connection.set_max_body_size(_NO_TORNADO_LIMIT)

    def refuse(handler_class: type[BaseHandler], **kwargs: Any) -> HandlerDelegate:
        return application.get_handler_delegate(request, handler_class, {"ctx": ctx, **kwargs})

    handler_class = delegate.handler_class
    if handler_class is not NotFoundHandler:
        # typeshed does not see a class as Hashable for functools.cache; it is.
        allowed = allowed_methods(handler_class)  # type: ignore[arg-type]
        if _is_preflight(request, ctx.settings):
            return refuse(PreflightHandler, allowed=allowed)
        if request.method not in allowed:
            delegate = refuse(MethodNotAllowedHandler, allowed=allowed)
    limit = ctx.settings.max_body_size
    if _declares_more_than(request.headers.get("Content-Length", ""), limit):
        return refuse(PayloadTooLargeHandler)
    return BodyLimit(delegate, limit, lambda: refuse(PayloadTooLargeHandler))


def _is_preflight(request: httputil.HTTPServerRequest, settings: Settings) -> bool:
    """A CORS preflight (OPTIONS naming the method to come) from an allowed origin; one
    from any other origin is answered like any OPTIONS: 405."""
    headers = request.headers
    # The origins last: parsing ALLOWED_ORIGINS is not for every request.
    return (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in headers
        and headers.get("Origin") in settings.origins
    )


def _declares_more_than(content_length: str, limit: int) -> bool:
    """Whether a Content-Length value is a number above `limit` (compared by length
    first: a header may hold thousands of digits, too many to convert)."""
    digits = content_length.strip().lstrip("0")
    if not (digits.isascii() and digits.isdigit()):
        return False  # absent, zero or malformed: Tornado refuses malformed ones itself
    return len(digits) > len(str(limit)) or int(digits) > limit


class BodyLimit(httputil.HTTPMessageDelegate):
    """Passes the request on to `delegate` until its body grows past `limit` bytes; then
    hands it to the delegate `too_large()` makes, which answers before more is read."""

    def __init__(
        self,
        delegate: httputil.HTTPMessageDelegate,
        limit: int,
        too_large: Callable[[], httputil.HTTPMessageDelegate],
    ) -> None:
        self.delegate = delegate
        self.limit = limit
        self.too_large = too_large
        self.received = 0
        self.refused = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self.start_line, self.headers = start_line, headers
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        self.received += len(chunk)
        if self.refused or self.received <= self.limit:
            return self.delegate.data_received(chunk)
        # What the route's delegate buffered goes with it; the refusal answers at once.
        self.refused = True
        self.delegate = self.too_large()
        return self.delegate.headers_received(self.start_line, self.headers)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()
