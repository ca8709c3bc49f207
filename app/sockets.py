"""The websockets a process holds, so that shutdown can close every one of them."""

from __future__ import annotations

from typing import Protocol


class Closable(Protocol):
    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class OpenSockets:
    def __init__(self) -> None:
        self._sockets: set[Closable] = set()
        self.accepting = True

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
