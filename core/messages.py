"""Field-level validation messages, keyed by pydantic error type.

Pydantic's own messages are English only; these msgids go through gettext so a
field error reads in the client's language. `{placeholders}` come from the error's ctx.
"""

from __future__ import annotations

from typing import Any

from core.errors import N_

# Raised for a query argument here, and for a body string by schemas.common.RequestModel.
NUL_CHARACTER = N_("Null characters are not allowed.")

FIELD_MESSAGES: dict[str, str] = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("This field is not allowed."),
    "string_type": N_("Enter a string."),
    "string_too_short": N_("Ensure this value has at least {min_length} characters."),
    "string_too_long": N_("Ensure this value has at most {max_length} characters."),
    "string_pattern_mismatch": N_("Enter a value in the expected format."),
    "int_type": N_("Enter a whole number."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "bool_type": N_("Enter true or false."),
    "bool_parsing": N_("Enter true or false."),
    "greater_than": N_("Ensure this value is greater than {gt}."),
    "greater_than_equal": N_("Ensure this value is greater than or equal to {ge}."),
    "less_than": N_("Ensure this value is less than {lt}."),
    "less_than_equal": N_("Ensure this value is less than or equal to {le}."),
    "literal_error": N_("Select one of: {expected}."),
    "enum": N_("Select one of: {expected}."),
    "value_error": N_("Enter a valid value."),
    "model_type": N_("Enter an object."),
    "dict_type": N_("Enter an object."),
    "list_type": N_("Enter a list."),
    "datetime_type": N_("Enter a date and time in ISO 8601 format."),
    "datetime_parsing": N_("Enter a date and time in ISO 8601 format."),
    "datetime_from_date_parsing": N_("Enter a date and time in ISO 8601 format."),
    "decimal_parsing": N_("Enter a number."),
    "decimal_type": N_("Enter a number."),
    "decimal_max_places": N_("Ensure there are no more than {decimal_places} decimal places."),
    "too_long": N_("Ensure this list has at most {max_length} items."),
    "too_short": N_("Ensure this list has at least {min_length} items."),
    "money_invalid": N_("Enter a non-negative amount with at most two decimal places, e.g. 19.99."),
    "email_invalid": N_("Enter a valid email address."),
    "timezone_required": N_("Include a time zone, e.g. 2026-01-31T12:00:00Z."),
    "nul_character": NUL_CHARACTER,
    # Raised by schemas.catalog.reject_null for PATCH fields that cannot be cleared.
    "not_nullable": N_("This field cannot be null."),
    # Raised by the shipping address schema (schemas/orders.py).
    "country_code": N_("Enter an ISO 3166-1 alpha-2 country code, such as DE."),
}
GENERIC_FIELD_MESSAGE = N_("Enter a valid value.")

BODY_NOT_OBJECT = N_("The request body must be a JSON object.")

# Messages that services attach to fields themselves (see services/*).
EMAIL_TAKEN = N_("A user with this email already exists.")
PASSWORD_TOO_SHORT = N_(
    "This password is too short. It must contain at least {min_length} characters."
)
PASSWORD_TOO_SIMILAR = N_("The password is too similar to the email address.")
PASSWORD_TOO_COMMON = N_("This password is too common.")
PASSWORD_ENTIRELY_NUMERIC = N_("This password is entirely numeric.")
TOKEN_INVALID = N_("This token is invalid or has already been used.")
TOKEN_EXPIRED = N_("This token has expired.")


class FieldMessage(str):
    """A msgid with the parameters to format it with once translated."""

    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> FieldMessage:
        obj = super().__new__(cls, msgid)
        obj.params = params
        return obj


# Catalog: categories, products, discounts and reviews.
SLUG_TAKEN = N_("This slug is already in use.")
CATEGORY_UNKNOWN = N_("There is no category with this slug.")
CATEGORY_IN_USE = N_("Discounts are limited to this category; delete or re-scope them first.")
DISCOUNT_CODE_TAKEN = N_("A discount with this code already exists.")
DISCOUNT_UNKNOWN = N_("This discount code does not exist.")
DISCOUNT_INACTIVE = N_("This discount code is not active.")
DISCOUNT_NOT_STARTED = N_("This discount code is not valid before {starts_at}.")
DISCOUNT_EXPIRED = N_("This discount code has expired.")
DISCOUNT_EXHAUSTED = N_("This discount code has been used up.")
DISCOUNT_BELOW_MINIMUM = N_("This discount code needs an order of at least {min_order_total}.")
DISCOUNT_NOT_APPLICABLE = N_("This discount code applies to none of the items in the cart.")
DISCOUNT_PERCENT_RANGE = N_("A percent discount is a whole number from 1 to 100.")
DISCOUNT_FIXED_AMOUNT = N_("A fixed discount is an amount above zero, e.g. 5.00.")
DISCOUNT_WINDOW = N_("The end must come after the start.")
REVIEW_EXISTS = N_("You have already reviewed this product.")


# Checkout: cart, orders and payments (services/cart.py, orders.py, payments.py).
CART_LINE_LIMIT = N_("A cart holds at most {max} of each product.")
CART_MIXED_CURRENCY = N_(
    "Your cart holds products priced in {currency}; order them before adding products "
    "priced in another currency."
)
CART_MIXED_CURRENCIES = N_("Your cart mixes currencies ({currencies}); an order is paid in one.")
IDEMPOTENCY_KEY_INVALID = N_("The Idempotency-Key header must have 1 to 255 characters.")
ORDER_STATUS_CONFLICT = N_("An order that is {current} cannot become {target}.")
ORDER_NOT_PAYABLE = N_("Only an order awaiting payment can be paid.")
STRIPE_SIGNATURE_INVALID = N_("The Stripe signature is missing or invalid.")
