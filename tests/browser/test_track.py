"""The /track page in a real headless Chromium: a shopper signs in and follows an order
live, through a dropped connection and an expired token, with live stock badges."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Error, Page, WebSocket, async_playwright, expect
from tornado.ioloop import IOLoop

from core.context import AppContext
from core.security import create_access_token
from core.websocket import GOING_AWAY
from tests.client import ApiClient
from tests.factories import DEFAULT_PASSWORD, create_user, log_in
from tests.order_factories import add_discount, add_product, fill_cart, place_order

# Fixtures "stripe_api" (the stand-in) and "settings" (Stripe configured against it).
from tests.stripe_stub import (  # noqa: F401
    deliver,
    event,
    payment_intent,
    stripe_api_fixture,
    stripe_settings_fixture,
)

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "track.png"

# Records every state the connection indicator takes from now on, so that a state
# shown only briefly is still seen.
RECORD_CONNECTION_STATES = """() => {
  const indicator = document.getElementById("connection");
  window.connectionStates = [];
  new MutationObserver(() => window.connectionStates.push(indicator.dataset.state))
    .observe(indicator, { attributes: true, attributeFilter: ["data-state"] });
}"""


@pytest.fixture
def page(io_loop: IOLoop) -> Iterator[Page]:
    """A page in Debian's headless Chromium, driven on the test's own loop."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: `apt-get install chromium` runs these tests")
    opened = AsyncExitStack()

    async def open_page() -> Page:
        playwright = await opened.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        opened.push_async_callback(browser.close)
        return await browser.new_page(locale="en-US", viewport={"width": 880, "height": 600})

    yield io_loop.run_sync(open_page)
    io_loop.run_sync(opened.aclose)


async def sign_in(page: Page, client: ApiClient, email: str) -> None:
    await page.goto(client.http.get_url(client.url("track:page")))
    await page.fill("#email", email)
    await page.fill("#password", DEFAULT_PASSWORD)
    await page.click("#login-form button[type=submit]")


def page_errors(page: Page) -> list[Error]:
    """The uncaught script errors the page raises from now on."""
    errors: list[Error] = []
    page.on("pageerror", lambda error: errors.append(error))
    return errors


def is_order_feed(socket: WebSocket) -> bool:
    return urlsplit(socket.url).path == "/ws/orders"


def query_of(socket: WebSocket) -> dict[str, list[str]]:
    return parse_qs(urlsplit(socket.url).query)


async def test_a_shopper_sees_an_order_move_live_and_catches_up_after_a_drop(
    client: ApiClient, ctx: AppContext, page: Page
) -> None:
    script_errors = page_errors(page)
    order_feeds: list[WebSocket] = []

    def note_order_feed(socket: WebSocket) -> None:
        if is_order_feed(socket):
            order_feeds.append(socket)

    page.on("websocket", note_order_feed)
    await add_product(ctx, "brass-lamp", stock=10)
    await add_discount(ctx, "SAVE5", kind="fixed", value=500)
    buyer = await log_in(client, ctx)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)

    await sign_in(page, client, buyer.user.email)
    connection = page.locator("#connection")
    await expect(connection).to_have_attribute("data-state", "live")
    await expect(connection).to_have_text("live")
    await expect(page.locator("#no-orders")).to_be_visible()

    # An order placed elsewhere appears, with its products' stock.
    await fill_cart(client, buyer.token, {"brass-lamp": 2})
    placed = await place_order(client, buyer.token, discount_code="SAVE5")
    assert placed.status == 201, placed.body
    order_id = placed.json()["id"]
    card = page.locator(f'#orders [data-order-id="{order_id}"]')
    status = card.locator(".status")
    lamp_stock = card.locator('[data-stock-for="brass-lamp"]')
    await expect(status).to_have_text("Awaiting payment")
    await expect(card.locator(".total")).to_have_text("$34.98")
    await expect(card.locator(".discount")).to_have_text("SAVE5 −$5.00")
    await expect(card.locator(".item-name")).to_have_text("2 × Brass Lamp")
    await expect(lamp_stock).to_have_text("in stock (8)")

    # Stripe reports the payment, then staff move the order along.
    paid = await deliver(client, event("payment_intent.succeeded", payment_intent(order_id)))
    assert paid.status == 200, paid.body
    await expect(status).to_have_text("Paid")
    for new_status, label in [("processing", "Processing"), ("shipped", "Shipped")]:
        moved = await client.patch(
            "orders:status", order_id, json={"status": new_status}, token=staff.token
        )
        assert moved.status == 200, moved.body
        await expect(status).to_have_text(label)
    shipped_event_id = moved.json()["last_event_id"]

    # The server drops every socket; the order is delivered while the page is away.
    await page.evaluate(RECORD_CONNECTION_STATES)
    ctx.sockets.drop_all(GOING_AWAY, "restarting")
    delivered = await client.patch(
        "orders:status", order_id, json={"status": "delivered"}, token=staff.token
    )
    assert delivered.status == 200, delivered.body
    await page.wait_for_function("() => window.connectionStates.includes('reconnecting')")
    await expect(connection).to_have_attribute("data-state", "live")
    await expect(status).to_have_text("Delivered")
    assert query_of(order_feeds[-1])["since"] == [str(shipped_event_id)]

    # Stock badges follow staff edits, for the ordered product and a watched one.
    await add_product(ctx, "oak-shelf", stock=0)
    await page.fill("#watch-product", "oak-shelf")
    await page.click("#watch-form button[type=submit]")
    shelf_stock = page.locator('#watched [data-stock-for="oak-shelf"]')
    await expect(shelf_stock).to_have_text("out of stock")
    for slug, stock in [("oak-shelf", 3), ("brass-lamp", 0)]:
        edited = await client.patch(
            "catalog:product", slug, json={"stock": stock}, token=staff.token
        )
        assert edited.status == 200, edited.body
    await expect(shelf_stock).to_have_text("in stock (3)")
    await expect(lamp_stock).to_have_text("out of stock")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOT, full_page=True)
    print(f"screenshot: {SCREENSHOT}")

    # Signing out is deliberate: the feed closes without "reconnecting", no token is kept.
    await page.click("#sign-out")
    await expect(page.locator("#login-form")).to_be_visible()
    await expect(connection).to_be_hidden()
    assert await page.evaluate("() => sessionStorage.length") == 0
    assert script_errors == []


@pytest.mark.settings(access_token_ttl=2)
async def test_the_page_renews_an_expired_token_and_keeps_following(
    client: ApiClient, ctx: AppContext, page: Page
) -> None:
    script_errors = page_errors(page)
    await add_product(ctx, "brass-lamp")
    shopper = await create_user(ctx)
    # Outlives the app's two-second tokens, so that the order is placed whatever the pace.
    api_token = create_access_token(user_id=shopper.id, key=ctx.settings.signing_key, ttl=600)
    await fill_cart(client, api_token, {"brass-lamp": 1})
    placed = await place_order(client, api_token)
    assert placed.status == 201, placed.body
    order = placed.json()

    async with page.expect_websocket(is_order_feed) as first_opened:
        await sign_in(page, client, shopper.email)
    first_feed = await first_opened.value
    status = page.locator(f'#orders [data-order-id="{order["id"]}"] .status')
    await expect(status).to_have_text("Awaiting payment")

    # The server closes the socket (4401) when its token expires; the page refreshes
    # its tokens and comes back with a new access token and its cursor.
    renewed_feed = await page.wait_for_event("websocket", is_order_feed, timeout=15_000)
    assert query_of(renewed_feed)["token"] != query_of(first_feed)["token"]
    assert query_of(renewed_feed)["since"] == [str(order["last_event_id"])]
    paid = await deliver(client, event("payment_intent.succeeded", payment_intent(order["id"])))
    assert paid.status == 200, paid.body
    await expect(status).to_have_text("Paid")
    await expect(page.locator("#login-form")).to_be_hidden()
    assert script_errors == []
