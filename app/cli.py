"""python -m app <command>: serve, worker, migrate, create-staff and each periodic task."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from pydantic import ValidationError

from app.context import create_context
from core import errors
from core.config import Settings
from core.context import AppContext
from core.logs import configure_logging, init_sentry

# The name of the variable, not a secret.
STAFF_PASSWORD_VARIABLE = "STAFF_PASSWORD"  # nosec B105


def migrate(settings: Settings) -> None:
    """Bring the database schema to the latest revision (alembic upgrade head)."""
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    from alembic import command
    from alembic.config import Config

    config = Config(os.path.join(os.path.dirname(os.path.dirname(__file__)), "alembic.ini"))
    config.attributes["database_url"] = settings.database_url
    command.upgrade(config, "head")


def _run(settings: Settings, job: Callable[[AppContext], Awaitable[Any]]) -> Any:
    """`job` on uvloop with the application's context: the asyncio loop written in C
    took a tenth off the server's CPU per checkout (docs/decisions.md, uvloop)."""
    return uvloop.run(_with_context(settings, job))


async def _with_context(settings: Settings, job: Callable[[AppContext], Awaitable[Any]]) -> Any:
    ctx = create_context(settings)
    try:
        return await job(ctx)
    finally:
        await ctx.close()


async def _create_staff(ctx: AppContext, email: str) -> str:
    from services.accounts import create_staff

    password = os.environ.get(STAFF_PASSWORD_VARIABLE) or getpass.getpass("Password: ")
    async with ctx.sessionmaker() as session:
        user = await create_staff(session, email=email, password=password)
    return f"staff user {user.email} ready"


async def _seed_demo(ctx: AppContext) -> str:
    from services.demo import DOCUMENTED_PASSWORDS, seed_demo

    async with ctx.sessionmaker() as session:
        report = await seed_demo(
            session, publisher=ctx.after_commit, documented_passwords=ctx.settings.debug
        )
    lines = [
        f"demo catalogue: {report.categories} categories, {report.products} products and "
        f"{report.discounts} discounts added (what already existed was kept)"
    ]
    if report.documented:
        lines += [
            f"demo login: {email} / {password}" for email, password in DOCUMENTED_PASSWORDS.items()
        ]
        return "\n".join(lines)
    lines += [
        f"created {email} with password {password}" for email, password in report.new_users.items()
    ]
    if not report.new_users:
        lines.append("demo users already exist; their passwords were printed when they were made")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from tasks import TASKS

    parser = argparse.ArgumentParser(prog="python -m app", description="Shop API")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP and websocket server")
    commands.add_parser(
        "worker", help="run the periodic tasks on their schedules (beside PERIODIC_TASKS=false)"
    )
    commands.add_parser("migrate", help="apply database migrations")
    staff = commands.add_parser(
        "create-staff",
        help=f"create or promote a staff user (password: ${STAFF_PASSWORD_VARIABLE} or a prompt)",
    )
    staff.add_argument("--email", required=True)
    commands.add_parser(
        "seed-demo", help="add the demo catalogue, discounts and users (idempotent)"
    )
    for task in TASKS:
        commands.add_parser(task.name, help=f"run the periodic task '{task.name}' once")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"configuration error: {_reasons(error)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, sentry=bool(settings.sentry_dsn))
    if settings.sentry_dsn:
        init_sentry(settings.sentry_dsn.get_secret_value())
    return _dispatch(args, settings)


def _reasons(error: ValidationError) -> str:
    """Each problem, after the variable it is about (none for a rule on several)."""
    reasons = []
    for problem in error.errors():
        reason = str(problem["msg"]).removeprefix("Value error, ")
        names = ".".join(str(part) for part in problem["loc"]).upper()
        reasons.append(f"{names}: {reason}" if names else reason)
    return "; ".join(reasons)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from app.server import serve, work
    from tasks import TASKS, run_once

    if args.command == "migrate":
        migrate(settings)
        return 0
    long_running = {"serve": serve, "worker": work}.get(args.command)
    if long_running is not None:
        _run(settings, long_running)
        return 0
    if args.command == "create-staff":
        try:
            print(_run(settings, lambda ctx: _create_staff(ctx, args.email)))
        except errors.ValidationFailed as error:
            problems = [
                str(msg).format(**getattr(msg, "params", {}))
                for msgs in error.fields.values()
                for msg in msgs
            ]
            print("password refused: " + " ".join(problems), file=sys.stderr)
            return 1
        return 0
    if args.command == "seed-demo":
        print(_run(settings, _seed_demo))
        return 0
    task = next(task for task in TASKS if task.name == args.command)
    try:
        # The same task_run (or task_failed) line as a scheduled run logs.
        result = _run(settings, lambda ctx: run_once(ctx, task))
    except Exception:  # logged with its traceback as task_failed
        return 1
    print(result if any(result.values()) else "nothing to do")
    return 0
