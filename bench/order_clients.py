"""Order-feed clients reconnecting all at once, in a process of their own.

    python -m bench.order_clients URL   (stdin: a JSON list of {token, since, expect})

opens one `/ws/orders?token=...&since=...` socket per entry of its input, every one at
the same moment, and reads each until it has received the event ids in `expect` (at
most CATCH_UP_SECONDS). Prints one JSON line: `clients`, `caught_up` (clients that
received exactly `expect`, in order, and nothing else), `missed` (clients lacking an
expected event), `unexpected` (clients sent an event twice, out of order, one not
expected, or a resync), `failed` (clients that could not catch up within
CATCH_UP_SECONDS, reconnecting as a real client does), `seconds` (from the start until
the last client caught up), `catch_up` (each caught-up client's seconds) and `retries`
(why clients reconnected: close code or error -> times).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.common import raise_open_file_limit
from bench.idle_subscribers import SPARE_FILES

CATCH_UP_SECONDS = 120
CAUGHT_UP, MISSED, UNEXPECTED, FAILED = "caught_up", "missed", "unexpected", "failed"
# Why clients had to reconnect: close code (or connection error) -> times.
CLOSE_CODES: Counter[int | str | None] = Counter()


async def reconnect(url: str, client: dict[str, Any], started: float) -> tuple[str, float]:
    """The client's outcome and the seconds from `started` until it was decided.

    Like a real client, one that is closed before it has caught up (1013 "try again
    later" when the server is too busy to start it, or a failed connection) waits a
    moment and reconnects from the last event it received."""
    expected: list[int] = client["expect"]
    received: list[int] = []
    while time.monotonic() - started < CATCH_UP_SECONDS:
        since = received[-1] if received else client["since"]
        address = f"{url}/ws/orders?token={client['token']}&since={since}"
        try:
            async with connect(
                address, open_timeout=CATCH_UP_SECONDS, ping_interval=None, compression=None
            ) as socket:
                while len(received) < len(expected):
                    message = json.loads(await socket.recv())
                    received.append(message.get("event_id", -1))
                    if received != expected[: len(received)]:
                        break
                break
        except ConnectionClosed as closed:
            CLOSE_CODES[closed.rcvd.code if closed.rcvd else None] += 1
        except (InvalidHandshake, OSError, TimeoutError) as error:
            CLOSE_CODES[type(error).__name__] += 1
        await asyncio.sleep(random.uniform(0.5, 1.5))  # nosec B311 - spreading retries
    else:
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
    summary["retries"] = dict(CLOSE_CODES)
    return summary


if __name__ == "__main__":
    entries = json.load(sys.stdin)
    raise_open_file_limit(len(entries) + SPARE_FILES)
    print(json.dumps(asyncio.run(main(sys.argv[1], entries))), flush=True)
