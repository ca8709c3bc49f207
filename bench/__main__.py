"""Run the benchmarks: `python -m bench` runs them all, `python -m bench NAME...` the
named ones. Each prints its table and replaces its own section of
bench/results/latest.md (the others stay as they were, each with its date), under the
machine and versions of the latest run."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess  # nosec B404 - the load tools' own --version
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench import catalog, checkout, checkout_subscribers, fanout, reconnect_storm

BENCHMARKS = {
    "catalog": catalog,
    "checkout_subscribers": checkout_subscribers,
    "checkout": checkout,
    "fanout": fanout,
    "reconnect_storm": reconnect_storm,
}
RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"


_SECTION = re.compile(r"^## .*\(`python -m bench (\w+)`\)$", re.MULTILINE)
PACKAGES = ("tornado", "uvloop", "SQLAlchemy", "aiomysql", "redis", "websockets")
PROGRAMS = ("wrk", "redis-server", "mariadbd")


def machine_lines() -> list[str]:
    packages = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    programs = ", ".join(program_version(name) for name in PROGRAMS)
    return [
        f"- machine: nproc {len(os.sched_getaffinity(0))}, {platform.platform()}",
        f"- python {platform.python_version()}; {packages}",
        f"- {programs}",
    ]


def program_version(name: str) -> str:
    """The first line `name --version` prints, or that it is not installed."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin")
    if path is None:
        return f"{name}: not installed"
    shown = subprocess.run(  # nosec B603 - a fixed program's --version
        [path, "--version"], capture_output=True, text=True, timeout=10
    )
    lines = (shown.stdout or shown.stderr).strip().splitlines()
    return lines[0] if lines else name


def earlier_sections() -> dict[str, str]:
    """The sections of the current results file, by benchmark name."""
    if not RESULTS.exists():
        return {}
    text = RESULTS.read_text()
    starts = list(_SECTION.finditer(text))
    ends = [match.start() for match in starts[1:]] + [len(text)]
    return {match.group(1): text[match.start() : end].strip() for match, end in zip(starts, ends)}


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    sections = earlier_sections()
    for name in names or BENCHMARKS:
        module = BENCHMARKS[name]
        measured = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"## {module.TITLE} (`python -m bench {name}`)", "", f"Measured {measured}."]
        lines += ["", *module.run()]
        sections[name] = "\n".join(lines)
        print(sections[name], end="\n\n", flush=True)
    document = ["# Benchmark results", "", *machine_lines()]
    for name in BENCHMARKS:
        if name in sections:
            document += ["", sections[name]]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(document) + "\n")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
