"""Endpoint metadata beside the routes: what each handler method needs and returns
(`endpoint`), enforced when it runs and read by the OpenAPI builder (app/openapi.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from core import errors
from core.security import AccessClaims
from models.accounts import User

Method = Callable[..., Awaitable[None]]
AuthLevel = Literal["user", "staff"]


class _Guarded(Protocol):
    """The handler an endpoint runs on (BaseHandler): how it reads the caller."""

    def require_claims(self) -> AccessClaims: ...

    def require_user(self) -> User: ...


@dataclass(frozen=True)
class RequestHeader:
    """A request header an endpoint reads, as the OpenAPI document describes it."""

    name: str
    description: str
    required: bool = False
    max_length: int | None = None


@dataclass(frozen=True)
class Operation:
    """What an endpoint needs and returns: enforced by `endpoint`, read by app/openapi.py."""

    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    # Other statuses answered with the same kind of body as `status`.
    also: tuple[int, ...] = field(default=())
    # The media type of that body: JSON (`response` describes it), or text.
    media_type: str = "application/json"
    auth: AuthLevel | None = None
    # The service reads the user inside its own transaction (checkout does): prepare()
    # only verifies the token then, and the handler passes `require_claims().user_id`.
    # Spares a transaction per request. With auth="user" only.
    user_read_by_service: bool = False
    errors: tuple[int, ...] = field(default=())
    headers: tuple[RequestHeader, ...] = field(default=())


def endpoint(summary: str, **details: Any) -> Callable[[Method], Method]:
    """Document a handler method and enforce its `auth` level ("user" or "staff")."""
    operation = Operation(summary=summary, **details)
    if operation.user_read_by_service and operation.auth != "user":
        raise ValueError("user_read_by_service goes with auth='user'")

    def decorate(method: Method) -> Method:
        @wraps(method)
        async def wrapper(self: _Guarded, *args: Any, **kwargs: Any) -> None:
            if operation.user_read_by_service:
                self.require_claims()
            elif operation.auth is not None:
                user = self.require_user()
                if operation.auth == "staff" and not user.is_staff:
                    raise errors.PermissionDenied()
            await method(self, *args, **kwargs)

        wrapper.operation = operation  # type: ignore[attr-defined]
        return wrapper

    return decorate


def operation_of(method: object) -> Operation | None:
    """The Operation `endpoint` attached to a handler method, if any."""
    operation = getattr(method, "operation", None)
    return operation if isinstance(operation, Operation) else None
