"""The websockets a process holds, so that shutdown can close every one of them, and
the turns they take to read their first messages from the database."""

from __future__ import annotations

import asyncio
from typing import Protocol

# Sockets reading their first messages (replay, snapshot) at once, each holding a
# database connection: a third of the pool's default 15, so a reconnect storm queues
# for turns here, where no pool timeout turns waiting into failure, and leaves the rest
# of the pool to requests.
STARTS_AT_ONCE = 5


class Closable(Protocol):
    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class OpenSockets:
    def __init__(self) -> None:
        self._sockets: set[Closable] = set()
        self.accepting = True
        self.start_turns = asyncio.Semaphore(STARTS_AT_ONCE)

    def add(self, socket: Closable) -> None:
        self._sockets.add(socket)

    def discard(self, socket: Closable) -> None:
        self._sockets.discard(socket)

    def __len__(self) -> int:
        return len(self._sockets)

    def close_all(self, code: int, reason: str) -> None:
        """Stop accepting and close every open socket with `code`."""
        self.accepting = False
        self.drop_all(code, reason)

    def drop_all(self, code: int, reason: str) -> None:
        """Close every open socket with `code`; new ones are still accepted."""
        for socket in list(self._sockets):
            socket.close(code, reason)
