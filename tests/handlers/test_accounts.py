"""/api/v1/auth: the whole sign-up flow and every way it can go wrong."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.context import AppContext
from core.security import create_access_token
from models.accounts import EmailVerificationToken, RefreshToken
from models.base import utcnow
from models.mail import OutboxMessage
from tasks.mail import send_mail
from tests.client import ApiClient
from tests.conftest import TEST_SECRET_KEY
from tests.factories import (
    DEFAULT_PASSWORD,
    count_rows,
    create_user,
    latest_mail_to,
    log_in,
    token_from_mail,
)
from tests.smtp import SmtpServer

EMAIL = "ada@example.com"


async def register(client: ApiClient, email: str = EMAIL, password: str = DEFAULT_PASSWORD) -> None:
    response = await client.post(
        "auth:register", json={"email": email, "password": password, "full_name": "Ada"}
    )
    assert response.status == 201, response.body


async def test_register_verify_login_and_me_through_a_real_smtp_server(
    client: ApiClient, ctx: AppContext, smtp: SmtpServer
) -> None:
    response = await client.post(
        "auth:register",
        json={"email": "Ada@Example.com", "password": DEFAULT_PASSWORD, "full_name": "Ada"},
    )
    assert response.status == 201
    assert response.json() == {
        "id": response.json()["id"],
        "email": EMAIL,
        "full_name": "Ada",
        "is_staff": False,
        "email_verified": False,
    }

    assert await send_mail(ctx) == {"sent": 1, "failed": 0}
    [mail] = smtp.messages
    assert mail["To"] == EMAIL
    assert mail["Subject"] == "Confirm your email address"
    token = token_from_mail(mail.get_content())

    verified = await client.post("auth:verify-email", json={"token": token})
    assert verified.status == 200
    assert verified.json()["email_verified"] is True

    login = await client.post("auth:login", json={"email": EMAIL, "password": DEFAULT_PASSWORD})
    assert login.status == 200
    tokens = login.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == ctx.settings.access_token_ttl

    me = await client.get("auth:me", token=tokens["access_token"])
    assert me.status == 200
    assert me.json()["email"] == EMAIL


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1!", "This password is too short. It must contain at least 10 characters."),
        ("ada.example", "The password is too similar to the email address."),
        ("password123", "This password is too common."),
        ("8203948572019", "This password is entirely numeric."),
    ],
)
async def test_register_refuses_each_weak_password(
    client: ApiClient, ctx: AppContext, password: str, message: str
) -> None:
    response = await client.post("auth:register", json={"email": EMAIL, "password": password})
    assert response.status == 400
    assert response.error_code == "validation_error"
    assert message in response.json()["error"]["fields"]["password"]
    assert await count_rows(ctx, OutboxMessage) == 0


async def test_register_refuses_an_email_taken_in_another_case(client: ApiClient) -> None:
    await register(client)
    response = await client.post(
        "auth:register", json={"email": "ADA@example.COM", "password": DEFAULT_PASSWORD}
    )
    assert response.status == 409
    assert response.error_code == "conflict"
    assert "email" in response.json()["error"]["fields"]


async def test_register_refuses_an_invalid_email(client: ApiClient) -> None:
    response = await client.post(
        "auth:register", json={"email": "not-an-email", "password": DEFAULT_PASSWORD}
    )
    assert response.status == 400
    assert list(response.json()["error"]["fields"]) == ["email"]


async def test_malformed_json_is_invalid_json(client: ApiClient) -> None:
    response = await client.request("POST", "auth:register", body="{not json")
    assert response.status == 400
    assert response.json()["error"] == {
        "code": "invalid_json",
        "message": "The request body is not valid JSON.",
    }


async def test_wrong_types_and_unknown_fields_are_field_errors(client: ApiClient) -> None:
    response = await client.post(
        "auth:register", json={"email": 42, "password": DEFAULT_PASSWORD, "admin": True}
    )
    fields = response.json()["error"]["fields"]
    assert response.status == 400
    assert fields["admin"] == ["This field is not allowed."]
    assert "email" in fields


async def test_a_json_body_that_is_not_an_object_is_refused(client: ApiClient) -> None:
    response = await client.request("POST", "auth:login", body="[1, 2]")
    assert response.status == 400
    assert response.error_code == "validation_error"


async def test_verification_token_cannot_be_used_twice(client: ApiClient, ctx: AppContext) -> None:
    await register(client)
    token = token_from_mail((await latest_mail_to(ctx, EMAIL)).body)
    assert (await client.post("auth:verify-email", json={"token": token})).status == 200
    again = await client.post("auth:verify-email", json={"token": token})
    assert again.status == 400
    assert again.json()["error"]["fields"]["token"] == [
        "This token is invalid or has already been used."
    ]


async def test_unknown_verification_token_is_refused(client: ApiClient) -> None:
    response = await client.post("auth:verify-email", json={"token": "x" * 43})
    assert response.status == 400
    assert "token" in response.json()["error"]["fields"]


async def test_expired_verification_token_is_refused(client: ApiClient, ctx: AppContext) -> None:
    await register(client)
    token = token_from_mail((await latest_mail_to(ctx, EMAIL)).body)
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(EmailVerificationToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await client.post("auth:verify-email", json={"token": token})
    assert response.status == 400
    assert response.json()["error"]["fields"]["token"] == ["This token has expired."]
    login = await client.post("auth:login", json={"email": EMAIL, "password": DEFAULT_PASSWORD})
    assert login.error_code == "email_not_verified"


async def test_resend_verification_answers_an_empty_202_whether_or_not_the_account_exists(
    client: ApiClient, ctx: AppContext
) -> None:
    await register(client)
    unknown = await client.post("auth:resend-verification", json={"email": "nobody@example.com"})
    known = await client.post("auth:resend-verification", json={"email": EMAIL})
    assert unknown.status == known.status == 202
    assert unknown.body == known.body == b""
    assert "Content-Type" not in known.headers
    async with ctx.sessionmaker() as session:
        recipients = (await session.scalars(select(OutboxMessage.recipient))).all()
    assert recipients == [EMAIL, EMAIL]


async def test_login_with_a_wrong_password_or_unknown_email_is_invalid_credentials(
    client: ApiClient, ctx: AppContext
) -> None:
    await create_user(ctx, EMAIL)
    wrong = await client.post("auth:login", json={"email": EMAIL, "password": "not-the-password"})
    unknown = await client.post(
        "auth:login", json={"email": "who@example.com", "password": DEFAULT_PASSWORD}
    )
    assert wrong.status == unknown.status == 401
    assert wrong.json() == unknown.json()
    assert wrong.error_code == "invalid_credentials"


async def test_login_before_verifying_is_refused(client: ApiClient) -> None:
    await register(client)
    response = await client.post("auth:login", json={"email": EMAIL, "password": DEFAULT_PASSWORD})
    assert response.status == 403
    assert response.error_code == "email_not_verified"


@pytest.mark.settings(login_rate_limit="3/minute")
async def test_successful_logins_do_not_count_against_the_limit(
    client: ApiClient, ctx: AppContext
) -> None:
    await log_in(client, ctx, EMAIL)
    for _ in range(6):
        attempt = {"email": EMAIL, "password": DEFAULT_PASSWORD}
        assert (await client.post("auth:login", json=attempt)).status == 200


@pytest.mark.settings(login_rate_limit="3/minute")
async def test_failed_logins_are_limited_per_account_and_per_address(
    client: ApiClient, ctx: AppContext
) -> None:
    await log_in(client, ctx, EMAIL)
    wrong = {"email": EMAIL, "password": "wrong-password-here"}
    for _ in range(3):
        assert (await client.post("auth:login", json=wrong)).status == 401
    # Past the limit even the right password is refused, before any password check.
    right = {"email": EMAIL.upper(), "password": DEFAULT_PASSWORD}
    assert (await client.post("auth:login", json=right)).status == 429
    # The address is spent too: guessing another account from it is refused as well.
    other = {"email": "other@example.com", "password": "wrong-password-here"}
    assert (await client.post("auth:login", json=other)).status == 429


@pytest.mark.settings(login_rate_limit="3/minute")
async def test_login_is_rate_limited_per_client_ip(client: ApiClient) -> None:
    attempt = {"email": EMAIL, "password": "wrong-password-here"}
    for _ in range(3):
        assert (await client.post("auth:login", json=attempt)).status == 401
    # A forged proxy header does not make a new client while TRUST_PROXY_HEADERS is off.
    limited = await client.post("auth:login", json=attempt, headers={"X-Forwarded-For": "9.9.9.9"})
    assert limited.status == 429
    assert limited.error_code == "rate_limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 60


async def test_refresh_rotates_and_a_reused_token_revokes_the_family(
    client: ApiClient, ctx: AppContext
) -> None:
    session = await log_in(client, ctx, EMAIL)
    rotated = await client.post("auth:refresh", json={"refresh_token": session.refresh_token})
    assert rotated.status == 200
    new_refresh = rotated.json()["refresh_token"]
    assert new_refresh != session.refresh_token

    replayed = await client.post("auth:refresh", json={"refresh_token": session.refresh_token})
    assert replayed.status == 401
    assert replayed.error_code == "not_authenticated"
    # The replay means the token leaked: its successor is revoked too.
    successor = await client.post("auth:refresh", json={"refresh_token": new_refresh})
    assert successor.status == 401


@pytest.mark.mariadb  # the backend whose row locks deadlock here
async def test_ten_concurrent_refreshes_of_one_token_make_one_pair_and_revoke_the_family(
    client: ApiClient, ctx: AppContext
) -> None:
    await log_in(client, ctx, EMAIL)
    for _ in range(5):  # a deadlock is likely in some round, not certain in one
        login = await client.post("auth:login", json={"email": EMAIL, "password": DEFAULT_PASSWORD})
        body = {"refresh_token": login.json()["refresh_token"]}
        responses = await asyncio.gather(
            *(client.post("auth:refresh", json=body) for _ in range(10))
        )
        statuses = sorted(response.status for response in responses)
        assert statuses == [200] + [401] * 9, [response.body[:200] for response in responses]
        [winner] = [response for response in responses if response.status == 200]
        # The spent token was presented again: the family is revoked, the new pair too.
        successor = await client.post(
            "auth:refresh", json={"refresh_token": winner.json()["refresh_token"]}
        )
        assert (successor.status, successor.error_code) == (401, "not_authenticated")


async def test_expired_refresh_token_is_token_expired(client: ApiClient, ctx: AppContext) -> None:
    session = await log_in(client, ctx, EMAIL)
    async with ctx.sessionmaker() as db, db.begin():
        await db.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = await client.post("auth:refresh", json={"refresh_token": session.refresh_token})
    assert response.status == 401
    assert response.error_code == "token_expired"


async def test_logout_revokes_the_refresh_token(client: ApiClient, ctx: AppContext) -> None:
    session = await log_in(client, ctx, EMAIL)
    logout = await client.post("auth:logout", json={"refresh_token": session.refresh_token})
    assert logout.status == 204
    assert logout.body == b""
    refused = await client.post("auth:refresh", json={"refresh_token": session.refresh_token})
    assert refused.status == 401


async def test_me_needs_a_token(client: ApiClient) -> None:
    response = await client.get("auth:me")
    assert response.status == 401
    assert response.error_code == "not_authenticated"


async def test_expired_access_token_is_token_expired(client: ApiClient, ctx: AppContext) -> None:
    user = await create_user(ctx, EMAIL)
    token = create_access_token(
        user_id=user.id, key=TEST_SECRET_KEY, ttl=60, now=utcnow() - timedelta(minutes=5)
    )
    response = await client.get("auth:me", token=token)
    assert response.status == 401
    assert response.error_code == "token_expired"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not.a.jwt",
        "Basic YWRhOnNlY3JldA==",
        "Bearer ",
    ],
)
async def test_malformed_credentials_are_not_authenticated(
    client: ApiClient, authorization: str
) -> None:
    response = await client.get("auth:me", headers={"Authorization": authorization})
    assert response.status == 401
    assert response.error_code == "not_authenticated"


async def test_a_token_signed_with_another_key_is_refused(
    client: ApiClient, ctx: AppContext
) -> None:
    user = await create_user(ctx, EMAIL)
    forged = create_access_token(user_id=user.id, key="another-key-" + "x" * 40, ttl=60)
    response = await client.get("auth:me", token=forged)
    assert response.status == 401
    assert response.error_code == "not_authenticated"


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("es", "El correo electrónico o la contraseña no son correctos."),
        ("de-DE,de;q=0.9", "Die E-Mail-Adresse oder das Passwort ist falsch."),
    ],
)
async def test_error_messages_follow_accept_language(
    client: ApiClient, language: str, message: str
) -> None:
    response = await client.post(
        "auth:login",
        json={"email": EMAIL, "password": "wrong-password"},
        headers={"Accept-Language": language},
    )
    assert response.json()["error"] == {"code": "invalid_credentials", "message": message}


async def test_field_messages_are_translated_too(client: ApiClient) -> None:
    response = await client.post(
        "auth:register",
        json={"email": EMAIL, "password": "123"},
        headers={"Accept-Language": "de"},
    )
    assert "Dieses Passwort ist zu kurz. Es muss mindestens 10 Zeichen enthalten." in (
        response.json()["error"]["fields"]["password"]
    )
