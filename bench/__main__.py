"""Run the benchmarks: `python -m bench` runs them all, `python -m bench NAME...` the
named ones. Each prints its table; together they are written to bench/results/latest.md
with the machine they ran on."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
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


def machine_lines() -> list[str]:
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: nproc {len(os.sched_getaffinity(0))}, {platform.platform()}",
        f"- python: {platform.python_version()}",
    ]


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    document = ["# Benchmark results", "", *machine_lines()]
    for name in names or BENCHMARKS:
        module = BENCHMARKS[name]
        section = [f"## {module.TITLE} (`python -m bench {name}`)", "", *module.run()]
        print("\n".join(section), end="\n\n", flush=True)
        document += ["", *section]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(document) + "\n")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
