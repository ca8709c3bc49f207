"""seed-demo: a demo catalogue that a second run leaves as it is."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.context import AppContext
from models.accounts import User
from models.catalog import Category, Discount, Product
from services.demo import DOCUMENTED_PASSWORDS, SHOPPER_EMAIL, STAFF_EMAIL, seed_demo
from tests.client import ApiClient
from tests.factories import count_rows
from tests.test_cli import run_cli


async def row_counts(ctx: AppContext) -> list[int]:
    return [await count_rows(ctx, model) for model in (Category, Product, Discount, User)]


async def test_seeding_twice_adds_the_catalogue_once_and_keeps_edits(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as session:
        first = await seed_demo(session, publisher=ctx.after_commit)
    assert (first.categories, first.products, first.discounts) == (5, 50, 2)
    assert set(first.new_users) == {STAFF_EMAIL, SHOPPER_EMAIL}
    async with ctx.sessionmaker() as session, session.begin():
        lamp = await session.scalar(select(Product).where(Product.slug == "brass-desk-lamp"))
        assert lamp is not None
        lamp.price_cents = 1

    async with ctx.sessionmaker() as session:
        second = await seed_demo(session, publisher=ctx.after_commit)
    assert (second.categories, second.products, second.discounts, second.new_users) == (
        0,
        0,
        0,
        {},
    )
    assert await row_counts(ctx) == [5, 50, 2, 2]
    async with ctx.sessionmaker() as session:
        lamp = await session.scalar(select(Product).where(Product.slug == "brass-desk-lamp"))
        assert lamp is not None and lamp.price_cents == 1


@pytest.mark.subprocess
async def test_seed_demo_prints_credentials_that_log_in(client: ApiClient, ctx: AppContext) -> None:
    result = run_cli(ctx, "seed-demo")
    assert result.returncode == 0, result.stderr
    credentials = dict(re.findall(r"created (\S+) with password (\S+)", result.stdout))
    assert set(credentials) == {STAFF_EMAIL, SHOPPER_EMAIL}
    for email, staff in ((STAFF_EMAIL, True), (SHOPPER_EMAIL, False)):
        login = await client.post(
            "auth:login", json={"email": email, "password": credentials[email]}
        )
        assert login.status == 200, login.body
        me = await client.get("auth:me", token=login.json()["access_token"])
        assert me.json()["is_staff"] is staff
    products = await client.get("catalog:products", query="category=lighting")
    assert products.json()["count"] == 10

    again = run_cli(ctx, "seed-demo")
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout


@pytest.mark.subprocess
async def test_under_debug_seed_demo_prints_the_documented_logins_every_time(
    client: ApiClient, ctx: AppContext
) -> None:
    run_cli(ctx, "seed-demo", DEBUG="false")  # the users first get random passwords
    for _ in range(2):
        result = run_cli(ctx, "seed-demo", DEBUG="true")
        assert result.returncode == 0, result.stderr
        logins = dict(re.findall(r"demo login: (\S+) / (\S+)", result.stdout))
        assert logins == DOCUMENTED_PASSWORDS
    for email, password in DOCUMENTED_PASSWORDS.items():
        login = await client.post("auth:login", json={"email": email, "password": password})
        assert login.status == 200, login.body
