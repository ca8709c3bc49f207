"""BaseHandler: what every handler shares (JSON in/out, errors, auth, headers, locale)."""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import structlog
import tornado.web
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core import errors
from core.context import AppContext
from core.i18n import translate
from core.json_input import decode_json
from core.messages import (
    BODY_NOT_OBJECT,
    FIELD_MESSAGES,
    GENERIC_FIELD_MESSAGE,
    NUL_CHARACTER,
    FieldMessage,
)
from core.security import AccessClaims, decode_access_token
from handlers.endpoints import operation_of
from models.accounts import User
from schemas.common import PageParams, Pagination, encode_json
from services import accounts

log = structlog.get_logger("shop.http")

M = TypeVar("M", bound=BaseModel)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# What a page on an allowed origin may send, and read, across origins.
CORS_REQUEST_HEADERS = "Authorization, Content-Type, Accept-Language, Idempotency-Key, X-Request-ID"
CORS_EXPOSED_HEADERS = "X-Request-ID, Retry-After, ETag"
# Content types of the service's own pages and their files.
HTML = "text/html; charset=UTF-8"
SCRIPT = "text/javascript; charset=UTF-8"
STYLESHEET = "text/css; charset=UTF-8"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Errors that mean the database cannot be reached: answered 503, not 500. TimeoutError
# covers core.db.DatabaseTimeout; the pool's own timeout is not a builtin TimeoutError.
_DATABASE_DOWN = (OperationalError, InterfaceError, ConnectionError, TimeoutError, PoolTimeout)
_HTTP_ERRORS: dict[int, type[errors.AppError]] = {
    400: errors.ValidationFailed,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
}


@cache  # computed once per policy, not per response
def security_headers(csp: str, *, debug: bool) -> tuple[tuple[str, str], ...]:
    """The headers every response carries (HSTS only outside DEBUG)."""
    headers = [
        ("Content-Security-Policy", csp),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if not debug:
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return tuple(headers)


class ErrorEnvelope(tornado.web.RequestHandler):
    """Errors answered in the JSON error envelope (docs/api.md): BaseHandler's, and those
    of a handler built on another of Tornado's (Swagger UI's files, handlers/ops.py)."""

    @property
    def request_id(self) -> str:
        """The client's X-Request-ID when well-formed, a generated one otherwise."""
        if not hasattr(self, "_request_id"):
            sent = self.request.headers.get("X-Request-ID", "")
            self._request_id = (
                sent
                if _REQUEST_ID.match(sent)
                else next(self.application.settings["shop_request_ids"])
            )
        return self._request_id

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = _as_app_error(exc_info[1] if exc_info else None, status_code)
        self.set_status(error.status)
        # A handler's own default type may be another (a static file's is HTML).
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if error.retry_after is not None:
            self.set_header("Retry-After", str(error.retry_after))
        body: dict[str, Any] = {
            "code": error.code,
            "message": translate(self.locale, error.message, error.params),
        }
        if error.fields:
            body["fields"] = {
                name: [translate(self.locale, msg, getattr(msg, "params", None)) for msg in msgs]
                for name, msgs in error.fields.items()
            }
        if self.settings.get("shop_debug") and exc_info and error.status == 500:
            body["traceback"] = traceback.format_exception(*exc_info)
        self.finish(json.dumps({"error": body}, ensure_ascii=False))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, errors.AppError | tornado.web.HTTPError):
            return  # expected outcomes, answered with their own status
        if isinstance(value, _DATABASE_DOWN):
            log.error("database_unavailable", error=str(value))
            return
        log.error("unhandled_exception", exc_info=(typ, value, tb))


class BaseHandler(ErrorEnvelope):
    content_security_policy = API_CSP
    ctx: AppContext

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._query_arguments: dict[str, str] | None = None
        self.access_claims: AccessClaims | None = None  # of a verified bearer token

    # --- headers -------------------------------------------------------------------

    def set_default_headers(self) -> None:
        # Runs again on every error response (clear()), so errors carry them too.
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Request-ID", self.request_id)
        debug = bool(self.application.settings.get("shop_debug"))
        for name, value in security_headers(self.content_security_policy, debug=debug):
            self.set_header(name, value)
        origin = self.request.headers.get("Origin")
        if origin is not None and origin in self.application.settings.get("shop_origins", ()):
            # CORS for the ALLOWED_ORIGINS only, without credentials (bearer tokens are
            # sent explicitly, never by the browser on its own).
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Expose-Headers", CORS_EXPOSED_HEADERS)
            self.set_header("Vary", "Origin")

    # --- request lifecycle --------------------------------------------------------

    async def prepare(self) -> None:
        self.ctx.requests_in_flight += 1
        self._in_flight = True
        structlog.contextvars.bind_contextvars(request_id=self.request_id)
        authorization = self.request.headers.get("Authorization")
        if authorization is not None:
            self.access_claims = self._verified_claims(authorization)
            if not self._user_read_by_service():
                async with self.ctx.sessionmaker() as session:
                    self.current_user = await accounts.user_of(session, self.access_claims)

    def _verified_claims(self, authorization: str) -> AccessClaims:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.NotAuthenticated()
        return decode_access_token(token.strip(), key=self.ctx.settings.signing_key)

    def _user_read_by_service(self) -> bool:
        """Whether the endpoint called reads its user itself (Operation)."""
        method = getattr(self, self.request.method.lower(), None)
        operation = operation_of(method)
        return operation is not None and operation.user_read_by_service

    async def head(self, *args: str, **kwargs: str) -> None:
        """GET without the body: Tornado drops what GET writes and keeps its headers
        (Content-Length and ETag included). Routed here only where GET is defined."""
        answered = self.get(*args, **kwargs)
        if answered is not None:
            await answered

    def on_finish(self) -> None:
        if getattr(self, "_in_flight", False):
            self._in_flight = False
            self.ctx.requests_in_flight -= 1

    def require_claims(self) -> AccessClaims:
        """The verified token's claims; NotAuthenticated when the request carries none."""
        if self.access_claims is None:
            raise errors.NotAuthenticated()
        return self.access_claims

    def require_user(self) -> User:
        """The authenticated user; NotAuthenticated when the request carries none."""
        user: User | None = self.current_user
        if user is None:
            raise errors.NotAuthenticated()
        return user

    @property
    def client_ip(self) -> str:
        """The socket peer, or the proxy's X-Real-IP/X-Forwarded-For when
        TRUST_PROXY_HEADERS is on (the server then runs with xheaders)."""
        return str(self.request.remote_ip)

    # --- input ----------------------------------------------------------------------

    def parse_body(self, model: type[M]) -> M:
        """Validate the JSON body against `model`; InvalidJSON (not JSON, or beyond the
        bounds of core/json_input.py) or ValidationFailed. No body at all counts as `{}`:
        fine where every field has a default (as the OpenAPI document says), a field
        error for each required one otherwise."""
        data = decode_json(self.request.body or b"{}")
        if not isinstance(data, dict):
            raise errors.ValidationFailed(BODY_NOT_OBJECT)
        return self._validate(model, data)

    def parse_query(self, model: type[M]) -> M:
        """Validate the query string (first value of each argument) against `model`."""
        return self._validate(model, self.query_arguments())

    def query_arguments(self) -> dict[str, str]:
        """The first value of each query argument. ValidationFailed naming each argument
        that holds a NUL byte: Tornado would turn it into a space, and a blank filter
        counts as not given, so `?q=%00` would silently list everything."""
        if self._query_arguments is None:
            arguments = self.request.query_arguments
            with_nul = [n for n, values in arguments.items() if any(b"\0" in v for v in values)]
            if with_nul:
                raise errors.ValidationFailed(
                    fields={name: [FieldMessage(NUL_CHARACTER)] for name in with_nul}
                )
            # Read once per request: a list reads them again for its page links.
            self._query_arguments = {name: self.get_query_argument(name) for name in arguments}
        return dict(self._query_arguments)

    @staticmethod
    def _validate(model: type[M], data: dict[str, Any]) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise errors.ValidationFailed(fields=_field_messages(error)) from error

    def pagination(self, params: PageParams | None = None) -> Pagination:
        """`?page=&page_size=` validated (400 when invalid), size clamped to MAX_PAGE_SIZE.
        `params`: the page part of a query validated already (not validated again)."""
        if params is None:
            params = self._validate(PageParams, self.query_arguments())
        size = params.page_size or self.ctx.settings.page_size
        return Pagination(page=params.page, page_size=min(size, self.ctx.settings.max_page_size))

    def translate(self, msgid: str, **params: Any) -> str:
        """`msgid` in the client's language (Accept-Language)."""
        return translate(self.locale, msgid, params)

    # --- output -----------------------------------------------------------------------

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(encode_json(data))

    def write_encoded(self, body: bytes) -> None:
        """Send a JSON body encoded before (a cached one) as it is."""
        self.finish(body)

    def write_page(self, results: list[Any], *, count: int, params: Pagination) -> None:
        """The list envelope (docs/api.md, Lists and paging) with absolute next/previous links."""
        self.write_encoded_page(encode_json(results), count=count, params=params)

    def write_encoded_page(self, results_json: bytes, *, count: int, params: Pagination) -> None:
        """write_page() around a results array encoded before (a cached one): only the
        envelope is encoded here."""
        last_page = max(1, -(-count // params.page_size))
        envelope = encode_json(
            {
                "count": count,
                "page": params.page,
                "page_size": params.page_size,
                "next": self._page_url(params.page + 1) if params.page < last_page else None,
                "previous": self._page_url(params.page - 1) if params.page > 1 else None,
            }
        )
        # The envelope's closing brace gives way to the results, last as they always were.
        self.finish(envelope[:-1] + b',"results":' + results_json + b"}")

    def _page_url(self, page: int) -> str:
        query = self.query_arguments()
        query["page"] = str(min(page, 10**9))
        return (
            f"{self.request.protocol}://{self.request.host}{self.request.path}?{urlencode(query)}"
        )

    def no_content(self, status: int = 204) -> None:
        """An answer without a body: 204, or 202 for work accepted with nothing to show."""
        self.set_status(status)
        self.clear_header("Content-Type")
        self.finish()


class FileHandler(BaseHandler):
    """A small file of the service's own (a page, its script or stylesheet), read once at
    start and served with the Content-Security-Policy of the page it belongs to."""

    def initialize(  # type: ignore[override]
        self, ctx: AppContext, content: bytes, content_type: str, csp: str
    ) -> None:
        super().initialize(ctx)
        self.content = content
        self.content_type = content_type
        self.set_header("Content-Security-Policy", csp)  # defaults were set before this ran

    async def get(self) -> None:
        self.set_header("Content-Type", self.content_type)
        self.finish(self.content)


def file_route(
    pattern: str, name: str, path: Path, content_type: str, csp: str
) -> tuple[str, type[FileHandler], str, dict[str, Any]]:
    """A route table entry serving the file at `path` (read now) with `content_type`."""
    kwargs = {"content": path.read_bytes(), "content_type": content_type, "csp": csp}
    return (pattern, FileHandler, name, kwargs)


def _as_app_error(error: BaseException | None, status_code: int) -> errors.AppError:
    if isinstance(error, errors.AppError):
        return error
    if isinstance(error, _DATABASE_DOWN):
        return errors.ServiceUnavailable()
    if isinstance(error, tornado.web.HTTPError) or error is None:
        return _HTTP_ERRORS.get(status_code, errors.AppError)()
    return errors.AppError()


def _field_messages(error: ValidationError) -> Mapping[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "body"
        msgid = FIELD_MESSAGES.get(item["type"], GENERIC_FIELD_MESSAGE)
        params = {key: str(value) for key, value in (item.get("ctx") or {}).items()}
        fields.setdefault(name, []).append(FieldMessage(msgid, **params))
    return fields
