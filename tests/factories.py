"""Test data made through the services and the API, as a user would make it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from core.context import AppContext
from models.accounts import User
from models.mail import OutboxMessage
from services import accounts
from tests.client import ApiClient

DEFAULT_PASSWORD = "correct-horse-battery-staple"
_TOKEN_LINE = re.compile(r"^([A-Za-z0-9_-]{40,})\r?$", re.MULTILINE)


@dataclass
class LoggedIn:
    user: User
    token: str
    refresh_token: str


def token_from_mail(body: str) -> str:
    """The verification code, which stands alone on its line in the mail."""
    match = _TOKEN_LINE.search(body)
    assert match, f"no token in mail body: {body!r}"
    return match.group(1)


async def count_rows(ctx: AppContext, model: Any) -> int:
    """How many rows the model's table holds now."""
    async with ctx.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def latest_mail_to(ctx: AppContext, recipient: str) -> OutboxMessage:
    async with ctx.sessionmaker() as session:
        message = await session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.recipient == recipient)
            .order_by(OutboxMessage.id.desc())
        )
    assert message is not None, f"no mail queued for {recipient}"
    return message


async def create_user(
    ctx: AppContext,
    email: str = "shopper@example.com",
    password: str = DEFAULT_PASSWORD,
    *,
    verified: bool = True,
    staff: bool = False,
    full_name: str = "Sam Shopper",
) -> User:
    """Register through the service; verify with the token from the queued mail."""
    if staff:
        async with ctx.sessionmaker() as session:
            return await accounts.create_staff(session, email=email, password=password)
    async with ctx.sessionmaker() as session:
        user = await accounts.register(
            session,
            email=email,
            password=password,
            full_name=full_name,
            language="en",
            settings=ctx.settings,
        )
    if verified:
        mail = await latest_mail_to(ctx, user.email)
        async with ctx.sessionmaker() as session:
            user = await accounts.verify_email(session, token=token_from_mail(mail.body))
    return user


async def log_in(
    client: ApiClient,
    ctx: AppContext,
    email: str = "shopper@example.com",
    *,
    staff: bool = False,
) -> LoggedIn:
    """Create a (verified) user and log in through the API."""
    user = await create_user(ctx, email, staff=staff)
    response = await client.post("auth:login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert response.status == 200, response.body
    tokens = response.json()
    return LoggedIn(user=user, token=tokens["access_token"], refresh_token=tokens["refresh_token"])
