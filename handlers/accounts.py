"""/api/v1/auth: registration, verification, tokens and the current user."""

from __future__ import annotations

from core import errors
from handlers.base import BaseHandler
from handlers.endpoints import endpoint
from schemas.accounts import (
    EmailIn,
    LoginIn,
    RefreshIn,
    RegisterIn,
    TokenIn,
    TokenPairOut,
    UserOut,
)
from services import accounts


class RegisterHandler(BaseHandler):
    @endpoint("Create an account", body=RegisterIn, response=UserOut, status=201, errors=(400, 409))
    async def post(self) -> None:
        data = self.parse_body(RegisterIn)
        async with self.ctx.sessionmaker() as session:
            user = await accounts.register(
                session,
                email=data.email,
                password=data.password,
                full_name=data.full_name,
                language=self.locale.code.split("_")[0],
                settings=self.ctx.settings,
            )
        self.write_json(UserOut.model_validate(user), status=201)


class VerifyEmailHandler(BaseHandler):
    @endpoint("Confirm an email address", body=TokenIn, response=UserOut, errors=(400,))
    async def post(self) -> None:
        data = self.parse_body(TokenIn)
        async with self.ctx.sessionmaker() as session:
            user = await accounts.verify_email(session, token=data.token)
        self.write_json(UserOut.model_validate(user))


class ResendVerificationHandler(BaseHandler):
    @endpoint("Send the verification mail again", body=EmailIn, status=202, errors=(400, 429))
    async def post(self) -> None:
        settings = self.ctx.settings
        limiter = self.ctx.limiter
        await limiter.hit(settings.resend_verification_ip_rate_limit, "resend-ip", self.client_ip)
        data = self.parse_body(EmailIn)
        # Unknown addresses count too: the limit must not tell which accounts exist.
        address = accounts.normalize_email(data.email)
        await limiter.hit(settings.resend_verification_rate_limit, "resend-address", address)
        async with self.ctx.sessionmaker() as session:
            await accounts.resend_verification(
                session, email=data.email, settings=self.ctx.settings
            )
        # No body: anything it said would be the same for every address.
        self.no_content(status=202)


class LoginHandler(BaseHandler):
    @endpoint("Log in", body=LoginIn, response=TokenPairOut, errors=(400, 401, 403, 429))
    async def post(self) -> None:
        data = self.parse_body(LoginIn)
        # Brute-force protection: failed attempts count, per client IP and per account;
        # past LOGIN_RATE_LIMIT of either, attempts are refused before any password check.
        account = accounts.normalize_email(data.email)
        limits = [("login-ip", self.client_ip), ("login-account", account)]
        rate = self.ctx.settings.login_rate_limit
        for scope, identity in limits:
            await self.ctx.limiter.check(rate, scope, identity)
        try:
            async with self.ctx.sessionmaker() as session:
                tokens = await accounts.login(
                    session, email=data.email, password=data.password, settings=self.ctx.settings
                )
        except errors.InvalidCredentials:
            for scope, identity in limits:
                await self.ctx.limiter.hit(rate, scope, identity)
            raise
        self.write_json(TokenPairOut.model_validate(tokens))


class RefreshHandler(BaseHandler):
    @endpoint(
        "Exchange a refresh token for a new pair",
        body=RefreshIn,
        response=TokenPairOut,
        errors=(400, 401),
    )
    async def post(self) -> None:
        data = self.parse_body(RefreshIn)
        async with self.ctx.sessionmaker() as session:
            tokens = await accounts.refresh(
                session, refresh_token=data.refresh_token, settings=self.ctx.settings
            )
        self.write_json(TokenPairOut.model_validate(tokens))


class LogoutHandler(BaseHandler):
    @endpoint("Revoke a refresh token", body=RefreshIn, status=204, errors=(400,))
    async def post(self) -> None:
        data = self.parse_body(RefreshIn)
        async with self.ctx.sessionmaker() as session:
            await accounts.logout(session, refresh_token=data.refresh_token)
        self.no_content()


class MeHandler(BaseHandler):
    @endpoint("The authenticated user", response=UserOut, auth="user")
    async def get(self) -> None:
        self.write_json(UserOut.model_validate(self.require_user()))


routes = [
    (r"/api/v1/auth/register", RegisterHandler, "auth:register"),
    (r"/api/v1/auth/verify-email", VerifyEmailHandler, "auth:verify-email"),
    (r"/api/v1/auth/resend-verification", ResendVerificationHandler, "auth:resend-verification"),
    (r"/api/v1/auth/login", LoginHandler, "auth:login"),
    (r"/api/v1/auth/refresh", RefreshHandler, "auth:refresh"),
    (r"/api/v1/auth/logout", LogoutHandler, "auth:logout"),
    (r"/api/v1/auth/me", MeHandler, "auth:me"),
]
