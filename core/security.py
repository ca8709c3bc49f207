"""Password hashing, JWT access tokens and opaque one-time tokens."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import NotAuthenticated, TokenExpired

_hasher = PasswordHasher()
JWT_ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"  # nosec B105
# Verified against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-real-password")


async def hash_password(password: str) -> str:
    """Argon2id hash, computed off the event loop (it costs tens of ms of CPU)."""
    return await asyncio.get_running_loop().run_in_executor(None, _hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a None hash still spends the same CPU time."""
    return await asyncio.get_running_loop().run_in_executor(
        None, _verify_sync, password_hash or _DUMMY_HASH, password, password_hash is not None
    )


def _verify_sync(password_hash: str, password: str, real: bool) -> bool:
    try:
        return _hasher.verify(password_hash, password) and real
    except (VerificationError, InvalidHashError):
        return False


def create_access_token(*, user_id: int, key: str, ttl: int, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "type": ACCESS_TOKEN_TYPE,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, key, algorithm=JWT_ALGORITHM)


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    expires_at: datetime


def decode_access_token(token: str, *, key: str) -> AccessClaims:
    """The user id and expiry of a valid access token.

    Raises TokenExpired for an expired one and NotAuthenticated for anything else
    (bad signature, wrong algorithm or type, malformed).
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "sub", "type"]}
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenExpired() from error
    except jwt.InvalidTokenError as error:
        raise NotAuthenticated() from error
    if claims.get("type") != ACCESS_TOKEN_TYPE or not str(claims["sub"]).isdigit():
        raise NotAuthenticated()
    return AccessClaims(
        user_id=int(claims["sub"]), expires_at=datetime.fromtimestamp(claims["exp"], UTC)
    )


def new_opaque_token() -> str:
    """A random URL-safe token for email links and refresh tokens."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are stored hashed: a leaked table does not hand out live tokens."""
    return hashlib.sha256(token.encode()).hexdigest()
