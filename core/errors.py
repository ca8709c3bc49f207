"""Domain exceptions. Services raise them; only BaseHandler.write_error renders them.

Each class carries its wire `code`, HTTP `status` and a gettext msgid `message`
(marked with `N_` so Babel extracts it; translated per request at the edge).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, where the locale is known."""
    return message


class AppError(Exception):
    code = "internal_error"
    status = 500
    message = N_("Something went wrong on our side. Please try again later.")
    retry_after: int | None = None  # seconds, sent as the Retry-After header when set

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: Mapping[str, Sequence[str]] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """`message` overrides the class msgid; `fields` maps a field to msgids;
        `params` fills `{placeholders}` after translation."""
        if message is not None:
            self.message = message
        self.fields = {name: list(msgs) for name, msgs in (fields or {}).items()}
        self.params = dict(params or {})
        super().__init__(self.message)


class ValidationFailed(AppError):
    code = "validation_error"
    status = 400
    message = N_("The request has invalid fields.")


class CartEmpty(AppError):
    """Checkout of a cart with nothing in it: a state of the cart, not a field error."""

    code = "cart_empty"
    status = 400
    message = N_("Your cart is empty.")


class InvalidJSON(AppError):
    code = "invalid_json"
    status = 400
    message = N_("The request body is not valid JSON.")


class NotAuthenticated(AppError):
    code = "not_authenticated"
    status = 401
    message = N_("Authentication credentials were not provided or are invalid.")


class InvalidCredentials(AppError):
    code = "invalid_credentials"
    status = 401
    message = N_("The email or password is incorrect.")


class TokenExpired(AppError):
    code = "token_expired"
    status = 401
    message = N_("The token has expired.")


class EmailNotVerified(AppError):
    code = "email_not_verified"
    status = 403
    message = N_("Verify your email address before logging in.")


class PermissionDenied(AppError):
    code = "permission_denied"
    status = 403
    message = N_("You do not have permission to do this.")


class NotFound(AppError):
    code = "not_found"
    status = 404
    message = N_("Not found.")


class MethodNotAllowed(AppError):
    code = "method_not_allowed"
    status = 405
    message = N_("This method is not allowed here.")


class Conflict(AppError):
    code = "conflict"
    status = 409
    message = N_("This conflicts with the current state of the resource.")


class InsufficientStock(AppError):
    code = "insufficient_stock"
    status = 409
    message = N_("Not enough stock for: {products}.")

    def __init__(self, products: Sequence[str]) -> None:
        super().__init__(params={"products": ", ".join(products)})
        self.products = list(products)


class PayloadTooLarge(AppError):
    code = "payload_too_large"
    status = 413
    message = N_("The request body is too large.")


class RateLimited(AppError):
    code = "rate_limited"
    status = 429
    message = N_("Too many requests. Try again in {seconds} seconds.")

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(params={"seconds": self.retry_after})


class PaymentsUnavailable(AppError):
    code = "payments_unavailable"
    status = 503
    message = N_("Payments are not available right now.")


class ServiceUnavailable(AppError):
    code = "service_unavailable"
    status = 503
    message = N_("The service is temporarily unavailable. Please try again shortly.")
    retry_after = 5
