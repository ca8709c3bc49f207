"""Idle websocket subscribers, in a process of their own so that their work is not
counted in the measuring process.

    python -m bench.idle_subscribers URL COUNT

opens COUNT websockets to URL (a `/ws/inventory?products=...` address), waits for each
one's snapshot and prints `ready`. Each socket then reads every frame it is sent and
sends nothing. When a number N arrives on standard input, it waits (at most
DRAIN_SECONDS) until every socket has received N `inventory.changed` frames, closes
them all and prints one JSON line: `connected`, `changes` (frames received in all),
`complete` (sockets that received N), `drain_seconds` (from N arriving until the last
socket had them) and `closed_by_server` (close code -> sockets).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.common import raise_open_file_limit

CONNECTING_AT_ONCE = 100
DRAIN_SECONDS = 120
# Descriptors beyond the sockets: the interpreter, pipes, the event loop.
SPARE_FILES = 256


class Subscriber:
    """One socket's reader: counts the stock changes it receives."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.changes = 0
        self.close_code: int | None = None
        self.changed = asyncio.Event()

    @classmethod
    async def connect(cls, url: str, gate: asyncio.Semaphore) -> Subscriber:
        async with gate:
            socket = await connect(url, ping_interval=None, compression=None)
            snapshot = json.loads(await socket.recv())
        if snapshot["type"] != "inventory.snapshot":
            raise RuntimeError(f"expected a snapshot first, got {snapshot}")
        return cls(socket)

    async def read(self) -> None:
        try:
            async for frame in self.socket:
                if json.loads(frame)["type"] == "inventory.changed":
                    self.changes += 1
                    self.changed.set()
        except ConnectionClosed:
            pass
        self.close_code = self.socket.close_code
        self.changed.set()

    async def received(self, wanted: int) -> None:
        while self.changes < wanted and self.close_code is None:
            self.changed.clear()
            await self.changed.wait()


async def main(url: str, count: int) -> int:
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    subscribers = await asyncio.gather(*(Subscriber.connect(url, gate) for _ in range(count)))
    readers = [asyncio.create_task(subscriber.read()) for subscriber in subscribers]
    print("ready", flush=True)

    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    wanted = int(line)
    started = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(subscriber.received(wanted) for subscriber in subscribers)),
            DRAIN_SECONDS,
        )
    except TimeoutError:
        pass
    drained = time.perf_counter() - started
    closed_by_server = Counter(
        str(subscriber.close_code) for subscriber in subscribers if subscriber.close_code
    )
    await asyncio.gather(*(subscriber.socket.close() for subscriber in subscribers))
    await asyncio.gather(*readers)
    summary = {
        "connected": count,
        "changes": sum(subscriber.changes for subscriber in subscribers),
        "complete": sum(subscriber.changes >= wanted for subscriber in subscribers),
        "drain_seconds": round(drained, 3),
        "closed_by_server": dict(closed_by_server),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    address, how_many = sys.argv[1], int(sys.argv[2])
    raise_open_file_limit(how_many + SPARE_FILES)
    sys.exit(asyncio.run(main(address, how_many)))
