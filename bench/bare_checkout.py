"""The checkout benchmark's stack ceiling: a bare Tornado server, in a process of its
own, answering `POST /api/v1/orders` by verifying the bearer token and running the
baseline's transaction (bench/buyers.py) on a plain aiomysql pool. No session, ORM,
validation, mail, events, logging or metrics: what Tornado and the driver alone cost
for the same checkout.

`python -m bench.bare_checkout` listens on PORT and orders on DATABASE_URL (MariaDB),
trusting tokens signed with SECRET_KEY, as `python -m app serve` does with the same
environment. Answers 201 (placed) or 409 (short of stock) with a small JSON body.
"""

from __future__ import annotations

import asyncio
import os

import aiomysql
import tornado.web

from bench.buyers import PLACED, checkout, open_pool
from core.security import decode_access_token

POOL_SIZE = 32  # one connection per buyer, as the baseline has


class CheckoutHandler(tornado.web.RequestHandler):
    def initialize(self, pool: aiomysql.Pool, key: str) -> None:
        self.pool = pool
        self.key = key

    async def post(self) -> None:
        _, _, token = self.request.headers.get("Authorization", "").partition(" ")
        claims = decode_access_token(token, key=self.key)
        outcome = await checkout(self.pool, claims.user_id)
        self.set_status(201 if outcome == PLACED else 409)
        self.finish({"outcome": outcome})


async def main() -> None:
    pool = await open_pool(os.environ["DATABASE_URL"], POOL_SIZE)
    settings = {"pool": pool, "key": os.environ["SECRET_KEY"]}
    app = tornado.web.Application([(r"/api/v1/orders", CheckoutHandler, settings)])
    app.listen(int(os.environ["PORT"]), address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
