"""Check that the service does what its OpenAPI document says: `python -m fuzz`.

Starts the service as production runs it (DEBUG off, no Stripe) on a fresh, migrated
SQLite database holding the demo catalogue, makes a verified shopper (registered and
verified through the API, with the code from the mail the server prints) and a staff
user (`create-staff`), then runs Schemathesis with every check three times: anonymous,
as the shopper and as staff. Prints the failures grouped by check and exits 1 if there
is any. Schemathesis comes from its own virtualenv (`make fuzz` builds .venv-fuzz), so
its pytest plugins never load into the project's test runs.

Reports (JUnit XML and Schemathesis' own output per identity, the server log) are left
in var/fuzz/.
"""

from __future__ import annotations

import argparse
import email
import json
import re
import subprocess  # nosec B404 - runs this project's own server and Schemathesis
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree  # nosec B405 - reads the reports Schemathesis just wrote

from bench.common import ROOT, fresh_environment, run_cli, server

REPORTS = ROOT / "var" / "fuzz"
CONFIG = Path(__file__).with_name("schemathesis.toml")
SHOPPER_EMAIL = "shopper@fuzz.example"
STAFF_EMAIL = "staff@fuzz.example"
# Fixed test credentials of a throwaway database, not secrets.
SHOPPER_PASSWORD = "correct horse battery staple"  # nosec B105
STAFF_PASSWORD = "staff horse battery staple"  # nosec B105
MAIL_SECONDS = 30  # the server hands queued mail over every 5 s
# Let the fuzzer past the per-IP login and per-user review limits to the logic behind
# them; the limits themselves are covered by the test suite.
GENEROUS_RATE_LIMIT = "100000/minute"
_VERIFICATION_CODE = re.compile(r"^([A-Za-z0-9_-]{20,})$", re.MULTILINE)


@dataclass(frozen=True)
class Identity:
    name: str
    token: str | None


@dataclass(frozen=True)
class Failure:
    identity: str
    operation: str
    code: str
    title: str


def main() -> int:
    args = _parse_args()
    REPORTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        env = fresh_environment(
            folder,
            LOG_LEVEL="INFO",
            EMAIL_BACKEND="console",
            LOGIN_RATE_LIMIT=GENEROUS_RATE_LIMIT,
            REVIEW_RATE_LIMIT=GENEROUS_RATE_LIMIT,
        )
        for name in [name for name in env if name.startswith(("STRIPE_", "SENTRY_"))]:
            del env[name]
        run_cli(env, "seed-demo")
        run_cli({**env, "STAFF_PASSWORD": STAFF_PASSWORD}, "create-staff", "--email", STAFF_EMAIL)
        server_log = REPORTS / "server.log"
        with server(env, server_log) as running:
            identities = [
                Identity("anonymous", None),
                Identity("shopper", _verified_shopper_token(running.url, server_log)),
                Identity("staff", _login(running.url, STAFF_EMAIL, STAFF_PASSWORD)),
            ]
            outcomes = {
                identity.name: _schemathesis(args, running.url, identity, Path(folder))
                for identity in identities
            }
    failures = [failure for name in outcomes for failure in _failures(name)]
    _print_summary(outcomes, failures, time.monotonic() - started)
    return 1 if failures or any(code != 0 for code in outcomes.values()) else 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument(
        "--schemathesis",
        default=str(ROOT / ".venv-fuzz" / "bin" / "st"),
        help="the st command (default: .venv-fuzz/bin/st)",
    )
    parser.add_argument("--max-examples", type=int, default=50, help="test cases per operation")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--time-limit", type=float, default=120, help="seconds each identity's run may take"
    )
    return parser.parse_args()


def _request(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(  # nosec B310 - a loopback http URL of our own
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310
        return json.load(response)


def _login(base_url: str, email_address: str, password: str) -> str:
    tokens = _request(
        f"{base_url}/api/v1/auth/login", {"email": email_address, "password": password}
    )
    return str(tokens["access_token"])


def _verified_shopper_token(base_url: str, server_log: Path) -> str:
    """Register the shopper, verify it with the code mailed to it, log in."""
    _request(
        f"{base_url}/api/v1/auth/register",
        {"email": SHOPPER_EMAIL, "password": SHOPPER_PASSWORD, "full_name": "Fuzz Shopper"},
    )
    code = _wait_for_verification_code(server_log)
    _request(f"{base_url}/api/v1/auth/verify-email", {"token": code})
    return _login(base_url, SHOPPER_EMAIL, SHOPPER_PASSWORD)


def _wait_for_verification_code(server_log: Path) -> str:
    """The code in the shopper's mail, which the console backend prints to the log."""
    deadline = time.monotonic() + MAIL_SECONDS
    while time.monotonic() < deadline:
        log = server_log.read_text(errors="replace")
        # A printed mail runs from its headers to a line of 72 dashes.
        start = log.find(f"To: {SHOPPER_EMAIL}\n")
        end = log.find("\n" + "-" * 72, start)
        if start != -1 and end != -1:
            mail = email.message_from_string(log[start:end])
            body = mail.get_payload(decode=True)
            found = _VERIFICATION_CODE.search(body.decode() if isinstance(body, bytes) else "")
            if found:
                return found.group(1)
        time.sleep(0.2)
    raise RuntimeError(f"no verification mail for {SHOPPER_EMAIL} in {server_log}")


def _schemathesis(
    args: argparse.Namespace, base_url: str, identity: Identity, workdir: Path
) -> int:
    """Run `st run` as `identity`; its exit code (124 when it ran out of time)."""
    command = [
        str(Path(args.schemathesis).absolute()),  # it runs in `workdir`
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(args.seed),
        "--max-examples",
        str(args.max_examples),
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(REPORTS / f"{identity.name}.xml"),
    ]
    if identity.token is not None:
        command += ["--header", f"Authorization: Bearer {identity.token}"]
    output = REPORTS / f"{identity.name}.txt"
    print(f"== schemathesis as {identity.name} (output in {output})", flush=True)
    with output.open("wb") as log:
        try:
            return subprocess.run(  # nosec B603 - fixed arguments
                command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, timeout=args.time_limit
            ).returncode
        except subprocess.TimeoutExpired:
            print(f"   stopped after {args.time_limit:g} s", flush=True)
            return 124


def _failures(identity: str) -> list[Failure]:
    """The failures in `identity`'s JUnit report: one per operation, check and title."""
    report = REPORTS / f"{identity}.xml"
    if not report.exists():
        return []
    found = []
    for case in ElementTree.parse(report).iter("testcase"):  # nosec B314 - our own report
        for failure in case.iter("failure"):
            title = _failure_title(failure.text or "")
            found.append(
                Failure(identity, case.get("name", "?"), failure.get("message", ""), title)
            )
    return found


def _failure_title(text: str) -> str:
    """The check and the response status of a failure's text, e.g.
    `ST202 Schema-valid request rejected [400] Bad Request`."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    check = next((line[2:] for line in lines if line.startswith("- ")), "?")
    status = next((line for line in lines if re.match(r"^\[\d{3}\]", line)), "")
    return f"{check} {status.rstrip(':')}".strip()


def _print_summary(outcomes: dict[str, int], failures: list[Failure], seconds: float) -> None:
    grouped: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for failure in failures:
        grouped[failure.title][failure.operation].append(failure.identity)
    print(f"\n== schemathesis summary ({seconds:.0f} s)")
    for name, code in outcomes.items():
        print(f"   {name}: {'passed' if code == 0 else f'failed (exit {code})'}")
    for title, operations in sorted(grouped.items()):
        print(f"\n   {title}")
        for operation, identities in sorted(operations.items()):
            print(f"     - {operation} ({', '.join(identities)})")
    print(f"\n{len(failures)} failures in {len(outcomes)} runs; reports in {REPORTS}")


if __name__ == "__main__":
    sys.exit(main())
