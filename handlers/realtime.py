"""Websocket channels (docs/websockets.md): /ws/orders and /ws/inventory.

Publishing never waits on a socket. Each event is framed once (`Message.websocket_frame`,
by core/websocket.py, which also holds the close codes used here) and its bytes are
handed to every listening socket's stream, which writes them as the peer reads: the
stream's buffer is the socket's queue. A socket with more than WS_QUEUE_LIMIT messages
not yet taken by the kernel is closed with 1013. Events that arrive while a socket sends
its first messages (replay, snapshot) are held and released after them, so nothing
falls in between. The events are schemas/events.py's, carried by the hub (core/hub.py).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import structlog
import tornado.websocket
from pydantic import BaseModel, ValidationError
from tornado.concurrent import Future
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from core import errors
from core.context import AppContext
from core.private_apis import websocket_stream
from core.websocket import (
    BAD_PARAMETERS,
    FORBIDDEN,
    GOING_AWAY,
    INTERNAL_ERROR,
    NOT_AUTHENTICATED,
    TRY_AGAIN_LATER,
)
from models.accounts import User
from schemas.events import (
    ACCOUNTS_CHANNEL,
    INVENTORY_CHANNEL,
    ORDERS_CHANNEL,
    AccountClosed,
    Event,
    InventorySnapshot,
    Message,
    OrderStatusChanged,
    Resync,
    StockChanged,
)
from schemas.realtime import InventoryFeedQuery, OrderFeedQuery
from services import accounts, inventory, orders

log = structlog.get_logger("shop.ws")

M = TypeVar("M", bound=BaseModel)

# The kernel grows a socket's send buffer to megabytes for a peer that stops reading;
# a fixed one bounds that memory per socket and lets such a peer overflow its queue soon.
SEND_BUFFER_BYTES = 64 * 1024


# The close reason of a socket whose user was deactivated (docs/websockets.md).
ACCOUNT_CLOSED = "account closed"


class Refused(Exception):
    """Ends a socket before it starts listening, with a close code of core/websocket.py
    (docs/websockets.md, Close codes)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class EventSocketHandler(tornado.websocket.WebSocketHandler):
    """One listener's socket: what the channels share. Subclasses name their `channel`,
    `start` the socket (parameters, first messages) and say which events it `wants`."""

    channel: ClassVar[str]
    # Beyond this wait for a turn the server is too busy: better a retry than a pile-up.
    START_WAIT_SECONDS: ClassVar[float] = 30.0

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._held: list[Event] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._stream: IOStream | None = None
        # Messages written since the stream was last seen fully flushed, and the future
        # of the newest write (done once everything written so far has been flushed).
        self._unflushed = 0
        self._last_write: Future[None] | None = None
        self._expiry: object | None = None
        self._counted = False
        self._account: int | None = None  # the id of the user the socket was opened for
        self._closed_accounts: set[int] = set()  # closed while that user was being read
        self._stop_following: Callable[[], None] | None = None

    def get_compression_options(self) -> None:
        """No per-message compression: every socket gets the same pre-framed bytes."""
        return None

    def check_origin(self, origin: str) -> bool:
        """Same-origin (Tornado's check), or an origin listed in ALLOWED_ORIGINS."""
        return origin in self.ctx.settings.origins or super().check_origin(origin)

    async def open(self, *args: Any, **kwargs: Any) -> None:
        if not self.ctx.sockets.accepting:
            self.close(GOING_AWAY, "server shutting down")
            return
        self._stream = websocket_stream(self)
        if self._stream is not None:
            self._stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self.ctx.sockets.add(self)
        self.ctx.metrics.sockets_open.labels(channel=self.channel).inc()
        self._counted = True
        try:
            await self.start()
        except Refused as refused:
            self.close(refused.code, refused.reason)
            return
        except tornado.websocket.WebSocketClosedError:
            return
        except Exception:
            log.exception("websocket_start_failed", channel=self.channel)
            self.close(INTERNAL_ERROR, "internal error")

    async def head(self, *args: Any, **kwargs: Any) -> None:
        """Answered as a GET that asks for no handshake (400), without the body: a
        handshake is a GET (RFC 6455), so HEAD never opens a socket."""
        self.request.headers.pop("Upgrade", None)
        await self.get(*args, **kwargs)

    async def start(self) -> None:
        """Validate the parameters, `listen()`, send the first messages and `release()`."""
        raise NotImplementedError

    def wants(self, event: Event) -> bool:
        """Whether this socket's listener receives `event`."""
        raise NotImplementedError

    def on_message(self, message: str | bytes) -> None:
        """Clients send nothing but pings and pongs; anything else is ignored."""

    def on_close(self) -> None:
        self._stop_listening()
        if self._stop_following is not None:
            self._stop_following()
            self._stop_following = None
        if self._expiry is not None:
            IOLoop.current().remove_timeout(self._expiry)
        self.ctx.sockets.discard(self)
        if self._counted:
            self._counted = False
            self.ctx.metrics.sockets_open.labels(channel=self.channel).dec()

    # --- for subclasses ---------------------------------------------------------------

    def query(self, model: type[M]) -> M:
        """The query string validated against `model`; Refused 4400 when invalid."""
        data = {name: self.get_query_argument(name) for name in self.request.query_arguments}
        try:
            return model.model_validate(data)
        except ValidationError as error:
            fields = ",".join(sorted({str(item["loc"][0]) for item in error.errors()}))
            raise Refused(BAD_PARAMETERS, f"invalid parameters: {fields}") from error

    @asynccontextmanager
    async def database_turn(self) -> AsyncIterator[None]:
        """Wait for a turn to read the first messages (see core/sockets.py); a socket that
        waits longer than START_WAIT_SECONDS is closed with 1013 and reconnects later."""
        turns = self.ctx.sockets.start_turns
        try:
            async with asyncio.timeout(self.START_WAIT_SECONDS):
                await turns.acquire()
        except TimeoutError as error:
            raise Refused(TRY_AGAIN_LATER, "server busy: reconnect later") from error
        try:
            yield
        finally:
            turns.release()

    async def authenticate(self, access_token: str | None) -> User:
        """The token's user; the socket closes with 4401 when the token expires or the
        user is deactivated (AccountClosed, from any process)."""
        if not access_token:
            raise Refused(NOT_AUTHENTICATED, errors.NotAuthenticated.code)
        # Following before the user is read: a deactivation committed after that read
        # must still close the socket.
        self._stop_following = self.ctx.hub.subscribe(ACCOUNTS_CHANNEL, self._on_account_event)
        try:
            async with self.ctx.sessionmaker() as session:
                authenticated = await accounts.authenticate(
                    session, access_token=access_token, key=self.ctx.settings.signing_key
                )
        except (errors.NotAuthenticated, errors.TokenExpired) as error:
            raise Refused(NOT_AUTHENTICATED, error.code) from error
        if authenticated.user.id in self._closed_accounts:
            raise Refused(NOT_AUTHENTICATED, ACCOUNT_CLOSED)
        self._account = authenticated.user.id
        self._closed_accounts.clear()
        self._close_at(authenticated.expires_at, NOT_AUTHENTICATED, errors.TokenExpired.code)
        return authenticated.user

    def _on_account_event(self, event: Event) -> None:
        """Close the socket with 4401 once its user's account is closed (AccountClosed,
        published by every process's deactivation through the hub)."""
        if not isinstance(event, AccountClosed):
            return
        if self._account is None:
            self._closed_accounts.add(event.user_id)
        elif event.user_id == self._account:
            self._stop_listening()
            self.close(NOT_AUTHENTICATED, ACCOUNT_CLOSED)

    def listen(self) -> None:
        """Subscribe to the channel, holding what arrives until `release()`."""
        self._held = []
        self._unsubscribe = self.ctx.hub.subscribe(self.channel, self._on_event)

    def release(self, keep: Callable[[Event], bool] = lambda event: True) -> None:
        """Send the held events that `keep` accepts; from now on events go out as they come."""
        held, self._held = self._held or [], None
        for event in held:
            if keep(event):
                self._send(event)

    async def send_now(self, message: Message) -> None:
        """Write one of the first messages (before `release()`), waiting until the socket
        takes it: a replay of many events goes at the peer's pace, not into the queue."""
        await self.write_message(message.frame)
        self.ctx.metrics.socket_messages.labels(channel=self.channel).inc()

    # --- delivery -----------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if not self.wants(event):
            return
        if self._held is None:
            self._send(event)
            return
        self._held.append(event)
        if len(self._held) > self.ctx.settings.ws_queue_limit:
            self._drop_slow_consumer()

    def _send(self, event: Event) -> None:
        """Hand the event's frame to the stream, never waiting for the peer."""
        if self._stream is None or self._stream.closed():
            return
        if self._last_write is not None and self._last_write.done():
            self._unflushed = 0
        if self._unflushed >= self.ctx.settings.ws_queue_limit:
            self._drop_slow_consumer()
            return
        self._unflushed += 1
        self._last_write = self._stream.write(event.websocket_frame)
        self.ctx.metrics.socket_messages.labels(channel=self.channel).inc()

    def _drop_slow_consumer(self) -> None:
        self._stop_listening()
        self.ctx.metrics.sockets_dropped_slow.labels(channel=self.channel).inc()
        log.info("websocket_too_slow", channel=self.channel)
        self.close(TRY_AGAIN_LATER, "too slow: queue overflowed")

    def _stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._held = None

    def _close_at(self, moment: datetime, code: int, reason: str) -> None:
        delay = max(0.0, moment.timestamp() - time.time())
        self._expiry = IOLoop.current().call_later(delay, self.close, code, reason)


class OrderSocketHandler(EventSocketHandler):
    """`order.status` for the user's orders (staff: every order), or one order."""

    channel = ORDERS_CHANNEL

    def initialize(self, ctx: AppContext) -> None:
        super().initialize(ctx)
        self._replayed: set[int | None] = set()  # ids the replay sent

    async def start(self) -> None:
        params = self.query(OrderFeedQuery)
        async with self.database_turn():
            self.viewer = await self.authenticate(params.token)
            self.order_id = params.order
            if self.order_id is not None:
                async with self.ctx.sessionmaker() as session:
                    allowed = await orders.may_watch_order(
                        session, viewer=self.viewer, order_id=self.order_id
                    )
                if not allowed:
                    raise Refused(FORBIDDEN, "not your order")
            self.listen()
            if params.since is None:
                self.release()
                return
            # A session of its own, begun after listen(): its snapshot (SQLite) must not
            # be older than the first event held.
            async with self.ctx.sessionmaker() as session:
                missed = await orders.events_since(
                    session,
                    viewer=self.viewer,
                    since=params.since,
                    order_id=self.order_id,
                    limit=self.ctx.settings.ws_replay_limit,
                )
        if missed.too_many:
            await self.send_now(Resync())
            self.release()
            return
        # An event committed while the replay ran is both stored and published: it may
        # be held already, or still in the hub's queue and come after release().
        self._replayed = {event.event_id for event in missed.events}
        for event in missed.events:
            await self.send_now(event)
        self.release(self._not_replayed)

    def wants(self, event: Event) -> bool:
        return (
            isinstance(event, OrderStatusChanged)
            and (self.viewer.is_staff or event.user_id == self.viewer.id)
            and (self.order_id is None or event.order_id == self.order_id)
            and self._not_replayed(event)
        )

    def _not_replayed(self, event: Event) -> bool:
        """False, once, for an event the replay has sent: the hub hands each event to a
        listener once, so its id is no longer needed. (Ids of events replayed but
        published before this socket listened stay: at most WS_REPLAY_LIMIT of them.)"""
        event_id = getattr(event, "event_id", None)
        if event_id in self._replayed:
            self._replayed.discard(event_id)
            return False
        return True


class InventorySocketHandler(EventSocketHandler):
    """A snapshot of the products' stock, then every change to it."""

    channel = INVENTORY_CHANNEL

    async def start(self) -> None:
        params = self.query(InventoryFeedQuery)
        self.products = frozenset(params.products)
        async with self.database_turn():
            self.listen()
            async with self.ctx.sessionmaker() as session:
                levels = await inventory.stock_snapshot(session, slugs=params.products)
        await self.send_now(InventorySnapshot(products=levels))
        self.release()

    def wants(self, event: Event) -> bool:
        return isinstance(event, StockChanged) and event.product in self.products


routes = [
    (r"/ws/orders", OrderSocketHandler, "ws:orders"),
    (r"/ws/inventory", InventorySocketHandler, "ws:inventory"),
]
