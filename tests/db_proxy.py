"""A TCP proxy on loopback in front of the database server, for fault tests.

It forwards bytes both ways until told otherwise: `freeze()` stops forwarding in both
directions and keeps every connection open (a server that hangs, as one stopped with
SIGSTOP does), `thaw()` resumes, delivering what was held, and `cut()` closes every
connection at once (a server that restarts, or a network that drops them). New
connections are accepted throughout; while frozen they hang like the old ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

CHUNK_BYTES = 64 * 1024


@dataclass(eq=False)  # links are told apart by identity, as set members
class _Link:
    """One client connection and the proxy's connection to the server on its behalf."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def cut(self) -> None:
        # abort(): drop the connection at once, as a reset would, without a goodbye.
        self.client.transport.abort()
        self.server.transport.abort()


class DatabaseProxy:
    """Start with `await start()`, end with `await close()`; `url(database_url)` is the
    same database reached through the proxy."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    @classmethod
    def in_front_of(cls, database_url: str) -> DatabaseProxy:
        url = make_url(database_url)
        return cls(url.host or "127.0.0.1", url.port or 3306)

    def url(self, database_url: str) -> str:
        """`database_url` with the proxy's address in place of the server's."""
        proxied = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return proxied.render_as_string(hide_password=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        for link in list(self._links):
            link.cut()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.thaw()
        self.cut()
        pumps = [pump for link in self._links for pump in link.pumps]
        await asyncio.gather(*pumps, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        link = _Link(client=client_writer, server=server_writer)
        self._links.add(link)
        link.pumps = [
            asyncio.create_task(self._pump(client_reader, server_writer, link)),
            asyncio.create_task(self._pump(server_reader, client_writer, link)),
        ]
        await asyncio.gather(*link.pumps, return_exceptions=True)
        self._links.discard(link)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        """Forward one direction until it ends; then the whole link goes."""
        try:
            while data := await reader.read(CHUNK_BYTES):
                await self._flowing.wait()
                if writer.transport.is_closing():  # cut while frozen
                    break
                writer.write(data)
                await writer.drain()
        except OSError:  # the other end, or cut(), dropped the connection
            pass
        finally:
            link.cut()
