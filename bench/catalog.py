"""Catalog reads over HTTP against the ceiling: a bare Tornado handler sending the same
bytes.

One server process (`python -m app serve`, DEBUG off) per configuration, all over one
seeded SQLite database: the response cache in memory (CACHE_TTL=60), no cache
(CACHE_TTL=0), and, when redis-server is installed, the cache in a private Redis. The
baseline is bench/bare.py in a process of its own, serving the exact bytes and content
type the real server sent for the same path. wrk loads each from a separate process
over loopback (`-t2 -c64 --latency`, BENCH_SECONDS each, 10 by default). Rounds are
interleaved (baseline, then the figures compared with it, ROUNDS times) and every ratio
is taken against the baseline of its own round, since the machine is shared and noisy.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from bench.bare import Response, bare_server
from bench.common import free_port, fresh_environment, run_cli, server, spawn
from bench.wrk import CONNECTIONS, SECONDS, THREADS, Load, WrkMissing, run_wrk, wrk_path

TITLE = "Catalog reads over HTTP against a bare Tornado handler"
ROUNDS = 3
TARGET = 0.6  # of the baseline, for cached reads (0.8 would be the stretch)
LIST_PATH = "/api/v1/products?page_size=20"
DETAIL_PATH = "/api/v1/products/brass-desk-lamp"
MEMORY, UNCACHED, REDIS = "memory cache", "no cache", "Redis cache"
# Each scenario's ratio to its baseline, recorded with this benchmark earlier (median of
# 3 rounds of 10 s), by commit: at a6f3166, before cached reads kept encoded bytes
# in-process; at d932c24, before a hit stopped opening a database session, validating
# its query twice and paying per-request costs (uuid4 ids, headers, metric lookups).
RECORDED = {
    "a6f3166": {
        f"cached list, {MEMORY}": 0.29,
        f"cached list, {REDIS}": 0.21,
        f"list, {UNCACHED}": 0.06,
        f"cached detail, {MEMORY}": 0.36,
        f"cached detail, {REDIS}": 0.23,
        f"detail, {UNCACHED}": 0.08,
        f"list 304 (If-None-Match), {MEMORY}": 0.25,
    },
    "d932c24": {
        f"cached list, {MEMORY}": 0.43,
        f"cached list, {REDIS}": 0.47,
        f"list, {UNCACHED}": 0.06,
        f"cached detail, {MEMORY}": 0.49,
        f"cached detail, {REDIS}": 0.46,
        f"detail, {UNCACHED}": 0.09,
        f"list 304 (If-None-Match), {MEMORY}": 0.40,
    },
}


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str  # MEMORY, UNCACHED or REDIS
    path: str
    target: float | None = None  # None: reported, without a target
    revalidate: bool = False  # sent with the ETag it was given: 304, no body


@dataclass(frozen=True)
class Group:
    """Scenarios compared with one baseline: the bare server sending the same answer."""

    baseline: Scenario
    scenarios: tuple[Scenario, ...]


GROUPS = (
    Group(
        Scenario("baseline: list bytes", "bare", LIST_PATH),
        (
            Scenario(f"cached list, {MEMORY}", MEMORY, LIST_PATH, TARGET),
            Scenario(f"cached list, {REDIS}", REDIS, LIST_PATH, TARGET),
            Scenario(f"list, {UNCACHED}", UNCACHED, LIST_PATH),
        ),
    ),
    Group(
        Scenario("baseline: detail bytes", "bare", DETAIL_PATH),
        (
            Scenario(f"cached detail, {MEMORY}", MEMORY, DETAIL_PATH, TARGET),
            Scenario(f"cached detail, {REDIS}", REDIS, DETAIL_PATH, TARGET),
            Scenario(f"detail, {UNCACHED}", UNCACHED, DETAIL_PATH),
        ),
    ),
    Group(
        Scenario("baseline: list 304", "bare", LIST_PATH, revalidate=True),
        (Scenario(f"list 304 (If-None-Match), {MEMORY}", MEMORY, LIST_PATH, revalidate=True),),
    ),
)


def run() -> list[str]:
    """Measure; the report as Markdown lines."""
    try:
        wrk_path()
    except WrkMissing as missing:
        print(f"catalog benchmark skipped: {missing}")
        raise SystemExit(1) from missing
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        env = fresh_environment(folder)
        run_cli(env, "seed-demo")
        configurations = {MEMORY: {"CACHE_TTL": "60"}, UNCACHED: {"CACHE_TTL": "0"}}
        notes = []
        if shutil.which("redis-server") is None:
            notes.append("Redis cache: not measured, redis-server is not installed.")
        else:
            redis_url = stack.enter_context(redis_server(Path(folder)))
            configurations[REDIS] = {"CACHE_TTL": "60", "REDIS_URL": redis_url}
        urls = {
            name: stack.enter_context(
                server({**env, **overrides}, Path(folder) / f"server-{name[:5]}.log")
            ).url
            for name, overrides in configurations.items()
        }
        responses = {path: fetch(urls[MEMORY] + path) for path in (LIST_PATH, DETAIL_PATH)}
        urls["bare"] = stack.enter_context(bare_server(responses, Path(folder)))
        loads = measure(urls)
    return report(loads, notes)


def fetch(url: str, headers: dict[str, str] | None = None) -> Response:
    """What GET `url` answers (200 expected), filling the cache where there is one."""
    with urllib.request.urlopen(  # nosec B310 - a loopback http URL of our own
        urllib.request.Request(url, headers=headers or {})
    ) as answer:
        return Response(answer.headers["Content-Type"], answer.read())


def etag(url: str) -> str:
    with urllib.request.urlopen(url) as answer:  # nosec B310 - loopback, our own
        return str(answer.headers["ETag"])


def measure(urls: dict[str, str]) -> dict[str, list[tuple[Load, Load]]]:
    """Each scenario's loads, one (figure, baseline) pair per round."""
    loads: dict[str, list[tuple[Load, Load]]] = {}
    for _ in range(ROUNDS):
        for group in GROUPS:
            baseline = load(urls, group.baseline)
            for scenario in group.scenarios:
                if scenario.server in urls:
                    loads.setdefault(scenario.name, []).append((load(urls, scenario), baseline))
    return loads


def load(urls: dict[str, str], scenario: Scenario) -> Load:
    url = urls[scenario.server] + scenario.path
    fetch(url)  # warm: the first answer fills the cache
    headers = {"If-None-Match": etag(url)} if scenario.revalidate else None
    return run_wrk(url, headers)


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A private, memory-only redis-server on a free loopback port; its URL."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    with spawn([*command, "--appendonly", "no"], None, folder / "redis.log", port):
        yield f"redis://127.0.0.1:{port}/0"


def report(loads: dict[str, list[tuple[Load, Load]]], notes: list[str]) -> list[str]:
    lines = [
        f"wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s, {ROUNDS} interleaved rounds; one server "
        "process per configuration, SQLite, DEBUG off, demo catalogue.",
        "",
        "| scenario | req/s | baseline req/s | ratio (rounds) "
        + "".join(f"| at {commit} " for commit in RECORDED)
        + "| target | verdict | p50 ms | p99 ms | baseline p50 / p99 ms |",
        "|---|---:|---:|---|" + "---:|" * len(RECORDED) + "---|---|---:|---:|---:|",
    ]
    targets = {s.name: s.target for group in GROUPS for s in group.scenarios}
    errors = []
    for name, pairs in loads.items():
        ratios = sorted(figure.rate / baseline.rate for figure, baseline in pairs)
        ratio = median(ratios)
        target = targets[name]
        verdict = "-" if target is None else ("met" if ratio >= target else "missed")
        failed = sum(figure.errors + baseline.errors for figure, baseline in pairs)
        if failed:
            errors.append(f"{name}: {failed} answers were errors (counted in req/s).")
        lines.append(
            f"| {name} | {median([f.rate for f, _ in pairs]):.0f} "
            f"| {median([b.rate for _, b in pairs]):.0f} "
            f"| {ratio:.2f} ({', '.join(f'{r:.2f}' for r in ratios)}) "
            + "".join(f"| {recorded[name]:.2f} " for recorded in RECORDED.values())
            + f"| {'reported' if target is None else f'>= {target}'} | {verdict} "
            f"| {median([f.p50_ms for f, _ in pairs]):.1f} "
            f"| {median([f.p99_ms for f, _ in pairs]):.1f} "
            f"| {median([b.p50_ms for _, b in pairs]):.1f} / "
            f"{median([b.p99_ms for _, b in pairs]):.1f} |"
        )
    lines += [
        "",
        "req/s and latencies: medians of the rounds; ratio: the median of the rounds' "
        "ratios to the baseline of the same round (each ratio listed). The baseline is a "
        "bare Tornado handler in its own process sending the same bytes and content type "
        "(for 304, Tornado's own ETag check). at a6f3166, at d932c24: the ratio recorded "
        "at that commit. At a6f3166 a hit read the generation and the body from the cache "
        "backend, decoded the JSON and encoded it again. At d932c24 a hit was served from "
        "bytes kept in-process, but still opened and closed a database session, validated "
        "the list's query twice, drew a uuid4 request id, built its security headers and "
        "looked its Prometheus children up anew.",
        *errors,
        *notes,
    ]
    return lines
