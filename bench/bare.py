"""The ceiling an HTTP figure is compared with: a bare Tornado handler, in a process of
its own, answering each path with fixed bytes (those the real server sent for it).

`python -m bench.bare PORT FILE` serves the responses in FILE, a JSON object mapping a
path (query string included) to `{"content_type": ..., "body": <base64>}`. Tornado
adds what it adds to any handler (Date, Server, Content-Length and a sha1 ETag, so
`If-None-Match` gets a 304 as well); nothing else runs per request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import tornado.web

from bench.common import free_port, spawn


@dataclass(frozen=True)
class Response:
    content_type: str
    body: bytes


class FixedHandler(tornado.web.RequestHandler):
    def initialize(self, responses: dict[str, Response]) -> None:
        self.responses = responses

    def get(self) -> None:
        response = self.responses.get(self.request.uri or "")
        if response is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", response.content_type)
        self.finish(response.body)


@contextmanager
def bare_server(responses: dict[str, Response], folder: Path) -> Iterator[str]:
    """The bare server serving `responses` (by path and query), on a free loopback port;
    its base URL."""
    spec = folder / "bare-responses.json"
    spec.write_text(
        json.dumps(
            {
                path: {
                    "content_type": response.content_type,
                    "body": base64.b64encode(response.body).decode(),
                }
                for path, response in responses.items()
            }
        )
    )
    port = free_port()
    module = [sys.executable, "-m", "bench.bare", str(port), str(spec)]
    with spawn(module, None, folder / "bare.log", port):
        yield f"http://127.0.0.1:{port}"


async def main(port: int, spec: Path) -> None:
    responses = {
        path: Response(entry["content_type"], base64.b64decode(entry["body"]))
        for path, entry in json.loads(spec.read_text()).items()
    }
    app = tornado.web.Application([(r".*", FixedHandler, {"responses": responses})])
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
