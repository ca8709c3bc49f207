"""Idle websocket subscribers, in a process of their own so that their work is not
counted in the measuring process.

    python -m bench.idle_subscribers COUNT URL [URL...]

opens COUNT websockets, spread evenly over the URLs (`/ws/inventory?products=...`
addresses, of one server or of several), waits for each one's snapshot and prints
`ready`. Each socket then reads every frame it is sent and sends nothing. Each time a
number N arrives on standard input, it waits (at most DRAIN_SECONDS) until every socket
has received N `inventory.changed` frames in all and prints one JSON line: `connected`,
`changes` (frames received in all), `complete` (sockets that received N),
`drain_seconds` (from N arriving until the last socket had them), `last_arrivals` (for
each of the N changes, when the last socket received it: time.monotonic(), which
processes of one machine share) and `closed_by_server` (close code -> sockets). At the
end of its input it closes the sockets and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.common import raise_open_file_limit

CONNECTING_AT_ONCE = 100
DRAIN_SECONDS = 120
# How long the subscribers may take to connect and receive their snapshots, or to close.
READY_SECONDS = 300
ROOT = Path(__file__).resolve().parent.parent
# Descriptors beyond the sockets: the interpreter, pipes, the event loop.
SPARE_FILES = 256


class SubscriberProcess:
    """The measuring side's handle on a running `python -m bench.idle_subscribers`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None and process.stdout is not None  # nosec B101
        self._stdin = process.stdin
        self._stdout = process.stdout

    async def ready(self) -> None:
        line = await asyncio.wait_for(self._stdout.readline(), READY_SECONDS)
        if line.strip() != b"ready":
            raise RuntimeError(f"subscribers did not connect: {line!r}")

    def finish(self) -> None:
        """End the input: the subscribers close their sockets and exit."""
        self._stdin.close()

    async def delivered(self, changes: int) -> dict[str, Any]:
        """The summary once every socket has `changes` changes in all (see above)."""
        self._stdin.write(f"{changes}\n".encode())
        await self._stdin.drain()
        summary: dict[str, Any] = json.loads(await self._stdout.readline())
        return summary


@asynccontextmanager
async def subscribers(count: int, *urls: str) -> AsyncIterator[SubscriberProcess]:
    """`count` subscribers in a process of their own, connected and past their snapshot;
    on leaving, they close their sockets and the process ends."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.idle_subscribers",
        str(count),
        *urls,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    handle = SubscriberProcess(process)
    try:
        await handle.ready()
        yield handle
        handle.finish()
        await asyncio.wait_for(process.wait(), READY_SECONDS)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


class Subscriber:
    """One socket's reader: counts the stock changes it receives."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.arrivals: list[float] = []
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
                    self.arrivals.append(time.monotonic())
                    self.changed.set()
        except ConnectionClosed:
            pass
        self.close_code = self.socket.close_code
        self.changed.set()

    @property
    def changes(self) -> int:
        return len(self.arrivals)

    async def received(self, wanted: int) -> None:
        while self.changes < wanted and self.close_code is None:
            self.changed.clear()
            await self.changed.wait()


async def main(count: int, urls: list[str]) -> int:
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    subscribers = await asyncio.gather(
        *(Subscriber.connect(urls[number % len(urls)], gate) for number in range(count))
    )
    readers = [asyncio.create_task(subscriber.read()) for subscriber in subscribers]
    print("ready", flush=True)

    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        print(json.dumps(await delivery(subscribers, int(line))), flush=True)
    await asyncio.gather(*(subscriber.socket.close() for subscriber in subscribers))
    await asyncio.gather(*readers)
    return 0


async def delivery(subscribers: list[Subscriber], wanted: int) -> dict[str, object]:
    """Wait until every socket has `wanted` changes (or DRAIN_SECONDS); the summary."""
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
    complete = [subscriber for subscriber in subscribers if subscriber.changes >= wanted]
    return {
        "connected": len(subscribers),
        "changes": sum(subscriber.changes for subscriber in subscribers),
        "complete": len(complete),
        "drain_seconds": round(drained, 3),
        "last_arrivals": [
            max(subscriber.arrivals[index] for subscriber in complete) if complete else None
            for index in range(wanted)
        ],
        "closed_by_server": dict(closed_by_server),
    }


if __name__ == "__main__":
    how_many, addresses = int(sys.argv[1]), sys.argv[2:]
    raise_open_file_limit(how_many + SPARE_FILES)
    sys.exit(asyncio.run(main(how_many, addresses)))
