"""Settings, read once from the environment at start (see docs/api.md for the table)."""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that show up in tutorials and .env templates; never acceptable as a real key.
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "secret-key", "your-secret-key", "dev"}
_MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    debug: bool = False
    secret_key: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///./var/shop.db"
    # Connect, pool checkout, each statement (server-side on MariaDB) and each round trip
    # of a session; past it the request answers 503 instead of waiting.
    database_timeout: float = Field(default=5, gt=0)
    # MariaDB/MySQL: connections checkout keeps in a pool of its own (core/direct/), per
    # process, beside the sessions' pool (up to 15).
    checkout_pool_size: int = Field(default=15, ge=1, le=1000)
    redis_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    sentry_dsn: SecretStr | None = None

    email_backend: Literal["console", "smtp"] = "console"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    default_from_email: str = "Shop <no-reply@shop.example>"

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    # Unset: "stripe" with STRIPE_SECRET_KEY; else "fake" under DEBUG; else no payments.
    payments_backend: Literal["stripe", "fake"] | None = None

    access_token_ttl: int = Field(default=900, gt=0)
    refresh_token_ttl: int = Field(default=7 * 24 * 3600, gt=0)
    verification_token_ttl: int = Field(default=48 * 3600, gt=0)
    login_rate_limit: str = "5/minute"
    review_rate_limit: str = "10/hour"
    # Verification mails asked for again: per email address, and per client IP.
    resend_verification_rate_limit: str = "3/hour"
    resend_verification_ip_rate_limit: str = "10/hour"

    page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    cart_inactive_days: int = Field(default=30, ge=1)
    order_payment_timeout: int = Field(default=30 * 60, gt=0)
    cache_ttl: int = Field(default=60, ge=0)
    # Off where the periodic tasks run in a process of their own (python -m app worker).
    periodic_tasks: bool = True

    ws_queue_limit: int = Field(default=256, ge=1)
    ws_replay_limit: int = Field(default=1000, ge=1)
    # Pings every interval; a peer that has not answered within the timeout is dropped,
    # so a silent peer goes within interval + timeout (30 s).
    ws_ping_interval: float = Field(default=20, gt=0)
    ws_ping_timeout: float = Field(default=10, gt=0)

    allowed_origins: str = ""
    trust_proxy_headers: bool = False
    max_body_size: int = Field(default=1024 * 1024, ge=1024)
    host: str = "127.0.0.1"
    port: int = Field(default=8888, ge=0, le=65535)

    @field_validator(
        "login_rate_limit",
        "review_rate_limit",
        "resend_verification_rate_limit",
        "resend_verification_ip_rate_limit",
    )
    @classmethod
    def _parse_rate(cls, value: str) -> str:
        from limits import parse

        parse(value)  # raises ValueError with the reason on a malformed limit
        return value

    @model_validator(mode="after")
    def _choose_payments_backend(self) -> Settings:
        backend = self.payments_backend
        if backend is None:
            backend = "stripe" if self.stripe_secret_key else ("fake" if self.debug else None)
            object.__setattr__(self, "payments_backend", backend)
        if backend == "fake" and not self.debug:
            raise ValueError("PAYMENTS_BACKEND=fake is only allowed with DEBUG on")
        return self

    @model_validator(mode="after")
    def _require_real_secret(self) -> Settings:
        if self.secret_key is None and self.debug:
            # A development run gets a fresh key per process: tokens die with it.
            object.__setattr__(self, "secret_key", SecretStr(secrets.token_urlsafe(32)))
        if self.debug:
            return self
        if self.secret_key is None:
            raise ValueError("SECRET_KEY is required when DEBUG is off")
        key = self.secret_key.get_secret_value()
        if key.lower() in _PLACEHOLDER_SECRETS or len(key) < _MIN_SECRET_LENGTH:
            raise ValueError(
                f"SECRET_KEY must be a random value of at least {_MIN_SECRET_LENGTH} characters"
            )
        return self

    @property
    def origins(self) -> list[str]:
        """ALLOWED_ORIGINS as a list; empty means same-origin only."""
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]

    @property
    def signing_key(self) -> str:
        """The key that signs JWTs (always set once validation has passed)."""
        assert self.secret_key is not None  # nosec B101
        return self.secret_key.get_secret_value()
