"""Settings come from the environment and refuse unsafe values."""

from __future__ import annotations

import os
import subprocess  # nosec B404 - runs this project's own CLI
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" * 40


def test_defaults_match_the_documented_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name in Settings.model_fields or name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    settings = Settings(secret_key=GOOD_KEY)
    assert settings.debug is False
    assert settings.database_url == "sqlite+aiosqlite:///./var/shop.db"
    assert settings.database_timeout == 5
    assert settings.redis_url is None
    assert settings.email_backend == "console"
    assert (settings.access_token_ttl, settings.refresh_token_ttl) == (900, 7 * 24 * 3600)
    assert (settings.page_size, settings.max_page_size) == (20, 100)
    assert settings.max_body_size == 1024 * 1024
    assert (settings.host, settings.port) == ("127.0.0.1", 8888)


def test_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("PAGE_SIZE", "5")
    monkeypatch.setenv("LOGIN_RATE_LIMIT", "10/hour")
    monkeypatch.setenv("TRUST_PROXY_HEADERS", "true")
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://shop.example, https://admin.shop.example")
    settings = Settings()
    assert settings.page_size == 5
    assert settings.login_rate_limit == "10/hour"
    assert settings.trust_proxy_headers is True
    assert settings.origins == ["https://shop.example", "https://admin.shop.example"]
    assert settings.signing_key == GOOD_KEY


def test_secret_key_is_required_unless_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DEBUG", raising=False)
    with pytest.raises(ValidationError, match="SECRET_KEY is required"):
        Settings()
    assert len(Settings(debug=True).signing_key) >= 32


@pytest.mark.parametrize("key", ["changeme", "secret", "too-short-key"])
def test_placeholder_or_short_secret_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY must be a random value"):
        Settings(secret_key=key)


@pytest.mark.parametrize(
    ("name", "value"),
    [("login_rate_limit", "lots"), ("page_size", "0"), ("port", "70000"), ("log_level", "LOUD")],
)
def test_malformed_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        values: dict[str, Any] = {name: value}
        Settings(secret_key=GOOD_KEY, **values)


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m app serve` with `env`, for a start that is meant to be refused."""
    return subprocess.run(  # nosec B603 - fixed arguments
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.subprocess
def test_the_service_refuses_to_start_without_a_secret_key_with_a_one_line_reason() -> None:
    result = serve({k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}})
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: SECRET_KEY is required when DEBUG is off"


@pytest.mark.subprocess
def test_a_malformed_value_is_refused_naming_its_variable() -> None:
    result = serve({**os.environ, "DEBUG": "true", "PERIODIC_TASKS": "maybe", "PORT": "http"})
    assert result.returncode == 2
    reasons = result.stderr.strip().removeprefix("configuration error: ").split("; ")
    assert [reason.split(":")[0] for reason in reasons] == ["PERIODIC_TASKS", "PORT"]


def test_the_payments_backend_follows_the_stripe_key_and_debug() -> None:
    assert Settings(secret_key=GOOD_KEY, stripe_secret_key="sk_test_x").payments_backend == "stripe"
    assert Settings(debug=True).payments_backend == "fake"
    assert Settings(secret_key=GOOD_KEY).payments_backend is None


@pytest.mark.subprocess
def test_the_fake_payments_backend_is_refused_without_debug() -> None:
    with pytest.raises(ValidationError, match="PAYMENTS_BACKEND=fake is only allowed with DEBUG"):
        Settings(secret_key=GOOD_KEY, payments_backend="fake")
    env = {**os.environ, "SECRET_KEY": GOOD_KEY, "DEBUG": "false", "PAYMENTS_BACKEND": "fake"}
    result = serve(env)
    assert result.returncode == 2
    assert "PAYMENTS_BACKEND=fake is only allowed with DEBUG" in result.stderr
