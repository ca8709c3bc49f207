"""HTTP load from a separate process: wrk (the Debian package), its output parsed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess  # nosec B404 - runs wrk
from dataclasses import dataclass
from pathlib import Path

THREADS = 2
CONNECTIONS = 64
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
# A slow answer is a figure to report, not a failure: wrk's own timeout is 2 s.
TIMEOUT_SECONDS = 30
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNSUCCESSFUL = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: (.*)")
_MILLISECONDS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


class WrkMissing(RuntimeError):
    """wrk is not installed."""


@dataclass(frozen=True)
class Load:
    """One wrk run: requests per second, latency percentiles (milliseconds), and how
    many answers were errors (an overloaded server may answer 503)."""

    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk_path() -> str:
    """Where wrk is; WrkMissing (saying how to get it) when it is not on PATH."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    return path


def run_wrk(url: str, headers: dict[str, str] | None = None) -> Load:
    """`wrk -t2 -c64 -d<BENCH_SECONDS>s --latency url`. RuntimeError when wrk fails or
    a socket error (a timeout included) occurred."""
    options = ["--latency"]
    for name, value in (headers or {}).items():
        options += ["-H", f"{name}: {value}"]
    output = _wrk(url, options, connections=CONNECTIONS, seconds=SECONDS)
    rate = _RATE.search(output)
    if rate is None:
        raise RuntimeError(f"wrk {url} printed no rate:\n{output}")
    unsuccessful = _UNSUCCESSFUL.search(output)
    percentiles = {
        share: float(value) * _MILLISECONDS[unit]
        for share, value, unit in _PERCENTILE.findall(output)
    }
    return Load(
        rate=float(rate.group(1)),
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        errors=int(unsuccessful.group(1)) if unsuccessful else 0,
    )


def run_script(
    url: str, script: Path, arguments: list[str], *, connections: int, seconds: int
) -> str:
    """`wrk -t2 -c<connections> -d<seconds>s -s script url -- arguments`: the last line
    printed (the script's done() report). RuntimeError as run_wrk()."""
    options = ["-s", str(script)]
    output = _wrk(url, options, arguments, connections=connections, seconds=seconds)
    return output.strip().splitlines()[-1]


def _wrk(
    url: str,
    options: list[str],
    arguments: list[str] | None = None,
    *,
    connections: int,
    seconds: int,
) -> str:
    """What wrk printed; RuntimeError when it failed or met a socket error (a timeout
    included)."""
    command = [wrk_path(), f"-t{THREADS}", f"-c{connections}", f"-d{seconds}s"]
    command += [f"--timeout={TIMEOUT_SECONDS}s", *options, url]
    if arguments:
        command += ["--", *arguments]
    result = subprocess.run(  # nosec B603 - fixed arguments
        command, capture_output=True, text=True, timeout=seconds + 60
    )
    output = result.stdout
    if result.returncode != 0:
        raise RuntimeError(f"wrk {url} failed:\n{output}{result.stderr}")
    socket_errors = _SOCKET_ERRORS.search(output)
    if socket_errors is not None:
        raise RuntimeError(f"wrk {url}: {socket_errors.group(0)}\n{output}")
    return output
