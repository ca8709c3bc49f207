"""Accounts: registration, email verification, login, token rotation, staff users."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import errors
from core.after_commit import AfterCommit
from core.config import Settings
from core.db import retry_on_deadlock
from core.direct import direct
from core.emails import VERIFY_EMAIL
from core.messages import EMAIL_TAKEN, TOKEN_EXPIRED, TOKEN_INVALID, FieldMessage
from core.passwords import password_problems
from core.security import (
    AccessClaims,
    create_access_token,
    decode_access_token,
    hash_password,
    hash_token,
    new_opaque_token,
    verify_password,
)
from models.accounts import EmailVerificationToken, RefreshToken, User
from models.base import utcnow
from schemas.common import Pagination
from schemas.events import AccountClosed
from schemas.users import UserQuery
from store.outbox import queue_mail
from store.users import get_active_user


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


def normalize_email(email: str) -> str:
    """The stored and compared form of an email: trimmed, lower-cased and in Unicode NFC.

    Emails are unique case-insensitively and otherwise exactly (`äda@` is not `ada@`, a
    fullwidth letter is not its ASCII twin); NFC makes a composed and a decomposed `ä`,
    which are the same text, one identity. Logins are limited per this form too.
    """
    return unicodedata.normalize("NFC", email.strip().lower())


@dataclass(frozen=True)
class Authenticated:
    user: User
    expires_at: datetime  # when the access token stops being valid


async def authenticate(session: AsyncSession, *, access_token: str, key: str) -> Authenticated:
    """The active user an access token belongs to. Raises TokenExpired, or
    NotAuthenticated for a bad token or a user that is gone or deactivated."""
    claims = decode_access_token(access_token, key=key)
    return Authenticated(user=await user_of(session, claims), expires_at=claims.expires_at)


async def user_of(session: AsyncSession, claims: AccessClaims) -> User:
    """The active user of a verified token's claims, read in a transaction of its own;
    NotAuthenticated for a user that is gone or deactivated."""
    async with session.begin():
        user = await get_active_user(await direct(session), user_id=claims.user_id)
    if user is None:
        raise errors.NotAuthenticated()
    return user


def _check_password(password: str, email: str) -> None:
    problems = password_problems(password, email=email)
    if problems:
        raise errors.ValidationFailed(fields={"password": problems})


async def register(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    full_name: str,
    language: str,
    settings: Settings,
) -> User:
    """Create an unverified user and queue the verification mail (one transaction).

    Raises ValidationFailed (password rules) or Conflict (email taken).
    """
    email = normalize_email(email)
    _check_password(password, email)
    user = User(
        email=email,
        password_hash=await hash_password(password),
        full_name=full_name,
        language=language,
    )
    async with session.begin():
        session.add(user)
        try:
            await session.flush()  # the unique index decides, not a prior SELECT
        except IntegrityError as error:  # only the user row: any other is not "taken"
            raise errors.Conflict(EMAIL_TAKEN, fields={"email": [EMAIL_TAKEN]}) from error
        await _send_verification(session, user, settings)
    return user


async def _send_verification(session: AsyncSession, user: User, settings: Settings) -> None:
    token = new_opaque_token()
    now = utcnow()
    session.add(
        EmailVerificationToken(
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.verification_token_ttl),
        )
    )
    subject, body = VERIFY_EMAIL.render(
        user.language,
        name=user.full_name or user.email,
        token=token,
        hours=settings.verification_token_ttl // 3600,
    )
    await queue_mail(
        await direct(session), recipient=user.email, subject=subject, body=body, now=utcnow()
    )


async def verify_email(session: AsyncSession, *, token: str) -> User:
    """Mark the token's user verified. ValidationFailed when the token is unknown,
    already used or expired."""
    async with session.begin():
        record = await session.scalar(
            select(EmailVerificationToken).where(
                EmailVerificationToken.token_hash == hash_token(token)
            )
        )
        if record is None or record.used_at is not None:
            raise errors.ValidationFailed(fields={"token": [FieldMessage(TOKEN_INVALID)]})
        now = utcnow()
        if record.expires_at <= now:
            raise errors.ValidationFailed(fields={"token": [FieldMessage(TOKEN_EXPIRED)]})
        used = await session.execute(
            update(EmailVerificationToken)
            .where(EmailVerificationToken.id == record.id, EmailVerificationToken.used_at.is_(None))
            .values(used_at=now)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent request won
            raise errors.ValidationFailed(fields={"token": [FieldMessage(TOKEN_INVALID)]})
        user = await session.get_one(User, record.user_id)
        user.email_verified = True
    return user


async def resend_verification(session: AsyncSession, *, email: str, settings: Settings) -> None:
    """Queue a new verification mail when `email` belongs to an unverified user.

    Says nothing either way, so the endpoint cannot be used to find accounts.
    """
    async with session.begin():
        user = await session.scalar(select(User).where(User.email == normalize_email(email)))
        if user is not None and user.is_active and not user.email_verified:
            await _send_verification(session, user, settings)


async def login(
    session: AsyncSession, *, email: str, password: str, settings: Settings
) -> IssuedTokens:
    """Check the credentials and issue a token pair.

    Raises InvalidCredentials (unknown email, wrong password, inactive user) or
    EmailNotVerified (right password, unverified email).
    """

    async def attempt() -> IssuedTokens:
        async with session.begin():
            user = await session.scalar(select(User).where(User.email == normalize_email(email)))
            # Verified even for an unknown email, so both take the same time.
            valid = await verify_password(user.password_hash if user else None, password)
            if user is None or not valid or not user.is_active:
                raise errors.InvalidCredentials()
            if not user.email_verified:
                raise errors.EmailNotVerified()
            return _issue_tokens(session, user.id, secrets.token_hex(16), settings)

    # Its insert may wait on the locks a family's revocation holds on the same index.
    return await retry_on_deadlock(attempt)


def _issue_tokens(
    session: AsyncSession, user_id: int, family_id: str, settings: Settings
) -> IssuedTokens:
    refresh = new_opaque_token()
    now = utcnow()
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id,
            token_hash=hash_token(refresh),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl),
        )
    )
    access = create_access_token(
        user_id=user_id, key=settings.signing_key, ttl=settings.access_token_ttl, now=now
    )
    return IssuedTokens(
        access_token=access, refresh_token=refresh, expires_in=settings.access_token_ttl
    )


async def refresh(session: AsyncSession, *, refresh_token: str, settings: Settings) -> IssuedTokens:
    """Rotate a refresh token: the presented one is spent, a new pair is issued.

    Presenting a spent token again means it leaked: the whole family is revoked
    and NotAuthenticated raised. Expired -> TokenExpired; unknown -> NotAuthenticated.
    Concurrent presentations of one token make one new pair; the others revoke.
    """

    async def attempt() -> IssuedTokens | None:
        async with session.begin():
            record = await session.scalar(
                select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
            )
            if record is None or record.revoked_at is not None:
                raise errors.NotAuthenticated()
            now = utcnow()
            if record.expires_at <= now:
                raise errors.TokenExpired()
            spent = await session.execute(
                update(RefreshToken)
                .where(RefreshToken.id == record.id, RefreshToken.used_at.is_(None))
                .values(used_at=now)
            )
            if spent.rowcount == 1:  # type: ignore[attr-defined]
                user = await get_active_user(await direct(session), user_id=record.user_id)
                if user is None:
                    raise errors.NotAuthenticated()
                return _issue_tokens(session, user.id, record.family_id, settings)
            await _revoke_family(session, record.family_id, now)
            return None

    # Concurrent revocations of one family lock its rows in differing orders on
    # MariaDB; the loser of a deadlock runs again and sees the token spent or revoked.
    tokens = await retry_on_deadlock(attempt)
    if tokens is None:
        raise errors.NotAuthenticated()  # raised after the commit: the revocation sticks
    return tokens


async def _revoke_family(session: AsyncSession, family_id: str, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def _revoke_user(session: AsyncSession, user_id: int, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def logout(session: AsyncSession, *, refresh_token: str) -> None:
    """Revoke the token's whole family; an unknown token is ignored (idempotent)."""

    async def attempt() -> None:
        async with session.begin():
            record = await session.scalar(
                select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
            )
            if record is not None:
                await _revoke_family(session, record.family_id, utcnow())

    # The family's rows are the ones a concurrent refresh of it locks too.
    await retry_on_deadlock(attempt)


async def create_staff(session: AsyncSession, *, email: str, password: str) -> User:
    """Create a verified staff user, or promote an existing one and reset its password."""
    email = normalize_email(email)
    _check_password(password, email)
    password_hash = await hash_password(password)
    async with session.begin():
        user = await session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, password_hash=password_hash)
            session.add(user)
        user.password_hash = password_hash
        user.is_staff = True
        user.email_verified = True
        user.is_active = True
    return user


async def purge_expired_tokens(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete verification tokens that are used or expired and expired refresh tokens.
    Returns how many rows went; safe to run from several processes at once."""
    now = now or utcnow()
    async with session.begin():
        verification = await session.execute(
            delete(EmailVerificationToken).where(
                or_(
                    EmailVerificationToken.expires_at <= now,
                    EmailVerificationToken.used_at.is_not(None),
                )
            )
        )
        refresh_tokens = await session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at <= now)
        )
    return int(verification.rowcount + refresh_tokens.rowcount)  # type: ignore[attr-defined]


# --- staff manage users ----------------------------------------------------------------


async def user_page(
    session: AsyncSession, *, filters: UserQuery, page: Pagination
) -> tuple[list[User], int]:
    """One page of users (oldest first) matching `filters`, and how many match.

    `search` matches part of the email or the full name, case-insensitively.
    """
    statement = select(User).order_by(User.id)
    search = (filters.search or "").strip()
    if search:
        statement = statement.where(
            or_(
                # Emails are stored lower-cased (normalize_email), and compared exactly.
                User.email.contains(normalize_email(search), autoescape=True),
                User.full_name.icontains(search, autoescape=True),
            )
        )
    if filters.is_active is not None:
        statement = statement.where(User.is_active.is_(filters.is_active))
    if filters.is_staff is not None:
        statement = statement.where(User.is_staff.is_(filters.is_staff))
    async with session.begin():
        count = await session.scalar(
            select(func.count()).select_from(statement.order_by(None).subquery())
        )
        rows = await session.scalars(statement.offset(page.offset).limit(page.page_size))
        return list(rows), count or 0


async def set_user_active(
    session: AsyncSession,
    *,
    actor: User,
    user_id: int,
    is_active: bool,
    publisher: AfterCommit,
) -> User:
    """Activate or deactivate a shopper's account; returns the user.

    Raises NotFound (unknown id) or PermissionDenied (the actor themselves or another
    staff member: nothing changes). Deactivating revokes every refresh token of the
    user in the same transaction and, after the commit, publishes AccountClosed, which
    closes the user's open sockets on every process.
    """

    async def attempt() -> User:
        async with session.begin():
            user = await session.get(User, user_id, populate_existing=True)
            if user is None:
                raise errors.NotFound()
            if user.id == actor.id or user.is_staff:
                raise errors.PermissionDenied()
            user.is_active = is_active
            if not is_active:
                await _revoke_user(session, user.id, utcnow())
        return user

    # The revocation locks the refresh-token rows a concurrent refresh or logout locks.
    user = await retry_on_deadlock(attempt)
    if not is_active:
        await publisher.publish([AccountClosed(user_id=user.id)])
    return user
