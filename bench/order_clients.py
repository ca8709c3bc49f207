"""Order-feed clients reconnecting all at once, in a process of their own.

    python -m bench.order_clients URL   (stdin: a JSON list of {token, since, expect})

opens one `/ws/orders?token=...&since=...` socket per entry of its input, every one at
the same moment, and reads each until it has received the event ids in `expect` (at
most CATCH_UP_SECONDS). Prints one JSON line: `clients`, `caught_up` (clients that
received exactly `expect`, in order, and nothing else), `missed` (clients lacking an
expected event), `unexpected` (clients sent an event twice, out of order, one not
expected, or a resync), `failed` (sockets that did not open or closed early),
`seconds` (from the start until the last client caught up) and `catch_up` (each caught-up
client's seconds).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.common import raise_open_file_limit
from bench.idle_subscribers import SPARE_FILES

CATCH_UP_SECONDS = 120
CAUGHT_UP, MISSED, UNEXPECTED, FAILED = "caught_up", "missed", "unexpected", "failed"


async def reconnect(url: str, client: dict[str, Any], started: float) -> tuple[str, float]:
    """The client's outcome and the seconds from `started` until it was decided."""
    expected: list[int] = client["expect"]
    received: list[int] = []
    address = f"{url}/ws/orders?token={client['token']}&since={client['since']}"
    try:
        async with connect(
            address, open_timeout=CATCH_UP_SECONDS, ping_interval=None, compression=None
        ) as socket:
            while len(received) < len(expected):
                message = json.loads(await socket.recv())
                received.append(message.get("event_id", -1))
                if received != expected[: len(received)]:
                    break
    except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
        return FAILED, time.monotonic() - started
    seconds = time.monotonic() - started
    if received == expected:
        return CAUGHT_UP, seconds
    return (MISSED if set(expected) - set(received) else UNEXPECTED), seconds


async def main(url: str, clients: list[dict[str, Any]]) -> dict[str, Any]:
    started = time.monotonic()
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(reconnect(url, client, started) for client in clients)),
        CATCH_UP_SECONDS * 2,
    )
    catch_up = [seconds for outcome, seconds in outcomes if outcome == CAUGHT_UP]
    summary: dict[str, Any] = {"clients": len(clients), "catch_up": catch_up}
    for kind in (CAUGHT_UP, MISSED, UNEXPECTED, FAILED):
        summary[kind] = sum(outcome == kind for outcome, _ in outcomes)
    summary["seconds"] = max(seconds for _, seconds in outcomes)
    return summary


if __name__ == "__main__":
    entries = json.load(sys.stdin)
    raise_open_file_limit(len(entries) + SPARE_FILES)
    print(json.dumps(asyncio.run(main(sys.argv[1], entries))), flush=True)
