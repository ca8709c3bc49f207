"""The fan-out baseline: a bare Tornado server that broadcasts as Tornado's chat demo
does, with nothing of the service around it (no database, no hub, no queue limits).

    PORT=N python -m bench.bare_broadcast

`/ws/inventory` sends a snapshot-shaped first message (so bench/idle_subscribers.py
reads it as it reads the service's), then nothing of its own; `POST /broadcast` writes
its body, as one text message, to every socket open, then answers 204.
"""

from __future__ import annotations

import asyncio
import json
import os

import tornado.web
import tornado.websocket

SNAPSHOT = json.dumps({"type": "inventory.snapshot", "products": []})


class Subscriber(tornado.websocket.WebSocketHandler):
    def initialize(self, sockets: set[Subscriber]) -> None:
        self.sockets = sockets

    def open(self) -> None:
        self.sockets.add(self)
        self.write_message(SNAPSHOT)

    def on_close(self) -> None:
        self.sockets.discard(self)


class Broadcast(tornado.web.RequestHandler):
    def initialize(self, sockets: set[Subscriber]) -> None:
        self.sockets = sockets

    def post(self) -> None:
        message = self.request.body.decode()
        for socket in list(self.sockets):
            try:
                socket.write_message(message)
            except tornado.websocket.WebSocketClosedError:
                pass
        self.set_status(204)


async def main(port: int) -> None:
    sockets: set[Subscriber] = set()
    app = tornado.web.Application(
        [
            (r"/ws/inventory", Subscriber, {"sockets": sockets}),
            (r"/broadcast", Broadcast, {"sockets": sockets}),
        ]
    )
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(os.environ["PORT"])))
