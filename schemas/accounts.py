"""Request and response models for /api/v1/auth."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from core.passwords import MIN_LENGTH
from schemas.common import Email, ORMModel, RequestModel

# Never stripped: leading and trailing spaces are part of a password.
Password = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=1, max_length=128),
    Field(json_schema_extra={"format": "password"}),
]


class RegisterIn(RequestModel):
    email: Email
    # Checked by core/passwords.py, which reports every rule broken at once; the schema
    # states the rules it can (length, not all digits).
    password: Password = Field(
        json_schema_extra={
            "minLength": MIN_LENGTH,
            "pattern": r"\D",
            "description": f"At least {MIN_LENGTH} characters, not all digits, not a common "
            "password, not too similar to the email.",
        }
    )
    full_name: str = Field(default="", max_length=150)


class LoginIn(RequestModel):
    email: str = Field(min_length=1, max_length=254)
    password: Password


class EmailIn(RequestModel):
    email: str = Field(min_length=1, max_length=254)


class TokenIn(RequestModel):
    token: str = Field(min_length=1, max_length=200)


class RefreshIn(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class UserOut(ORMModel):
    id: int
    email: str
    full_name: str
    is_staff: bool
    email_verified: bool


class TokenPairOut(ORMModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
