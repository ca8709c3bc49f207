// The order tracking page: sign in, list your orders, follow their status live over
// /ws/orders and the stock of their products over /ws/inventory (docs/websockets.md).
"use strict";

const SESSION_KEY = "shop.track.session";
const ORDERS_URL = "/api/v1/orders?page_size=50";
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;
// A socket that stayed open this long was healthy: after it drops, backoff starts over.
const HEALTHY_MS = 10000;
const MAX_WATCHED = 100; // what /ws/inventory accepts
const TOKEN_REJECTED = 4401;
// Retrying cannot fix these: the request itself is wrong.
const PERMANENT_CLOSES = new Set([4400, 4403]);
const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const UNREACHABLE = "The shop cannot be reached. Check your connection and try again.";

const STATUS_LABELS = {
  pending_payment: "Awaiting payment",
  paid: "Paid",
  processing: "Processing",
  shipped: "Shipped",
  delivered: "Delivered",
  payment_failed: "Payment failed",
  cancelled: "Cancelled",
  expired: "Expired",
  refunded: "Refunded",
};
const CONNECTION_LABELS = { live: "live", reconnecting: "reconnecting…", offline: "offline" };

const state = {
  session: readSession(), // {accessToken, refreshToken, email} or null
  // order id -> {id, status, eventId, details (the REST order, or null until loaded), element}
  orders: new Map(),
  highestEventId: 0,
  orderFeed: null,
  watched: new Set(), // slugs typed in the watch field
  stock: new Map(), // slug -> {stock, in_stock}, or null for a product the shop does not sell
  stockFeed: null,
  stockSlugs: "",
};
let refreshing = null;
// Counts sign-outs, so that an answer to a request made before one is not shown after it.
let sessionEpoch = 0;

const byId = (id) => document.getElementById(id);

// --- session ---------------------------------------------------------------------------

function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

function saveSession(session) {
  state.session = session;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

// --- REST ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `The shop answered ${status}.`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

class SessionEnded extends Error {}

async function request(path, { method = "GET", body, authenticated = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (authenticated && state.session) headers.Authorization = `Bearer ${state.session.accessToken}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// An authenticated call; an expired access token is refreshed once and the call repeated.
// SessionEnded when the user signed out while it ran.
async function api(path, options) {
  const epoch = sessionEpoch;
  let data;
  try {
    data = await request(path, options);
  } catch (error) {
    if (error.code !== "token_expired" || !(await refreshSession())) throw error;
    data = await request(path, options);
  }
  if (epoch !== sessionEpoch) throw new SessionEnded();
  return data;
}

// Refresh tokens rotate and a used one is refused, so concurrent callers share one refresh.
// True when the session has fresh tokens.
function refreshSession() {
  refreshing ??= (async () => {
    const session = state.session;
    if (!session) return false;
    try {
      const tokens = await request("/api/v1/auth/refresh", {
        method: "POST",
        body: { refresh_token: session.refreshToken },
        authenticated: false,
      });
      if (state.session !== session) return false; // signed out meanwhile
      saveSession({
        ...session,
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
      });
      return true;
    } catch (error) {
      // 400/401: the refresh token is used, revoked or expired. Anything else (the shop
      // down or unreachable) keeps the session: the caller tries again later.
      if (error instanceof ApiError && (error.status === 400 || error.status === 401)) {
        endSession("Your session has ended. Please sign in again.");
      }
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

// --- channels --------------------------------------------------------------------------

function channelUrl(path, params) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}?${new URLSearchParams(params)}`;
}

function retryDelay(failures) {
  const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** failures);
  return delay * (0.75 + Math.random() / 2); // jitter: clients dropped together spread out
}

// Keep one channel socket open: after any close but `stop()`, reconnect with backoff.
// `address()` is read at every attempt, so it can carry a fresh token and cursor.
function followChannel({ address, onMessage, onStateChange = () => {}, beforeRetry }) {
  let socket = null;
  let openedAt = null;
  let failures = 0;
  let retryTimer = null;
  let stopped = false;

  function connect() {
    openedAt = null;
    socket = new WebSocket(address());
    socket.addEventListener("open", () => {
      openedAt = Date.now();
      onStateChange("live");
    });
    socket.addEventListener("message", (message) => onMessage(JSON.parse(message.data)));
    socket.addEventListener("close", async (event) => {
      socket = null;
      if (stopped) return;
      if (PERMANENT_CLOSES.has(event.code)) {
        onStateChange("offline");
        return;
      }
      onStateChange("reconnecting");
      if (openedAt !== null && Date.now() - openedAt >= HEALTHY_MS) failures = 0;
      if (beforeRetry) await beforeRetry(event.code);
      if (!stopped) retryTimer = setTimeout(connect, retryDelay(failures++));
    });
  }

  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      socket?.close(1000, "done");
    },
  };
}

// --- orders ----------------------------------------------------------------------------

function noteEventId(eventId) {
  if (eventId !== null && eventId > state.highestEventId) state.highestEventId = eventId;
}

// Store an order read over REST. A live event newer than this copy keeps its status.
function upsertOrder(order) {
  const entry = state.orders.get(order.id) ?? { id: order.id, status: order.status, eventId: 0 };
  entry.details = order;
  if ((order.last_event_id ?? 0) >= entry.eventId) {
    entry.status = order.status;
    entry.eventId = order.last_event_id ?? 0;
  }
  noteEventId(order.last_event_id);
  state.orders.set(order.id, entry);
  renderOrder(entry);
}

async function loadOrders() {
  const page = await api(ORDERS_URL);
  page.results.forEach(upsertOrder);
  const note = byId("orders-note");
  note.hidden = page.count <= page.results.length;
  note.textContent = `Showing your ${page.results.length} most recent of ${page.count} orders.`;
  showEmptyState();
  followStock();
}

async function reloadOrders() {
  try {
    await loadOrders();
    byId("orders-error").hidden = true;
  } catch (error) {
    if (state.session && !(error instanceof SessionEnded)) showError(byId("orders-error"), error);
  }
}

async function applyStatusEvent(event) {
  noteEventId(event.event_id);
  const known = state.orders.get(event.order_id);
  if (known) {
    if (event.event_id <= known.eventId) return; // already shown
    known.status = event.status;
    known.eventId = event.event_id;
    paintStatus(known);
    announce(`Order ${event.order_id}: ${STATUS_LABELS[event.status] ?? event.status}`);
    return;
  }
  // An order placed elsewhere (or older than the list): show it now, details follow.
  const entry = { id: event.order_id, status: event.status, eventId: event.event_id, details: null };
  state.orders.set(entry.id, entry);
  renderOrder(entry);
  showEmptyState();
  announce(`New order ${entry.id}: ${STATUS_LABELS[entry.status] ?? entry.status}`);
  try {
    upsertOrder(await api(`/api/v1/orders/${entry.id}`));
    followStock();
  } catch (error) {
    if (error instanceof SessionEnded) return;
    entry.detailsFailed = true; // the card still follows the status; a reload brings details
    renderOrder(entry);
  }
}

function onOrderMessage(message) {
  if (message.type === "order.status") applyStatusEvent(message);
  else if (message.type === "resync") reloadOrders();
}

function followOrders() {
  state.orderFeed = followChannel({
    address: () =>
      channelUrl("/ws/orders", { token: state.session.accessToken, since: state.highestEventId }),
    onMessage: onOrderMessage,
    onStateChange: showConnection,
    beforeRetry: (code) => code === TOKEN_REJECTED && refreshSession(),
  });
}

// --- stock -----------------------------------------------------------------------------

function watchedSlugs() {
  const slugs = new Set(state.watched);
  for (const entry of state.orders.values()) {
    for (const item of entry.details?.items ?? []) slugs.add(item.product);
  }
  return [...slugs].slice(0, MAX_WATCHED);
}

// (Re)open /ws/inventory when the set of products to watch changes.
function followStock() {
  const slugs = watchedSlugs();
  const key = slugs.join(",");
  if (key === state.stockSlugs) return;
  state.stockSlugs = key;
  state.stockFeed?.stop();
  state.stockFeed = null;
  if (slugs.length === 0) return;
  state.stockFeed = followChannel({
    address: () => channelUrl("/ws/inventory", { products: key }),
    onMessage: onStockMessage,
  });
}

function onStockMessage(message) {
  if (message.type === "inventory.snapshot") {
    const levels = new Map(message.products.map((level) => [level.product, level]));
    for (const slug of state.stockSlugs.split(",")) setStock(slug, levels.get(slug) ?? null);
  } else if (message.type === "inventory.changed") {
    setStock(message.product, message);
  }
}

function setStock(slug, level) {
  state.stock.set(slug, level);
  for (const badge of document.querySelectorAll(`[data-stock-for="${CSS.escape(slug)}"]`)) {
    paintStock(badge);
  }
}

function watchProduct(event) {
  event.preventDefault();
  const input = byId("watch-product");
  input.value = input.value.trim().toLowerCase();
  if (!SLUG.test(input.value)) {
    input.reportValidity();
    return;
  }
  if (!state.watched.has(input.value)) {
    state.watched.add(input.value);
    const item = document.createElement("li");
    item.dataset.product = input.value;
    item.append(element("code", {}, input.value), " ", stockBadge(input.value));
    byId("watched").append(item);
  }
  input.value = "";
  followStock();
}

// --- rendering -------------------------------------------------------------------------

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function formatMoney(amount, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount} ${currency}`; // a currency code Intl does not know
  }
}

function formatDate(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function stockBadge(slug) {
  const badge = element("span", { class: "stock", "data-stock-for": slug });
  paintStock(badge);
  return badge;
}

function paintStock(badge) {
  const slug = badge.dataset.stockFor;
  const level = state.stock.get(slug);
  if (level === undefined) {
    badge.dataset.stock = "unknown";
    badge.textContent = "checking stock…";
  } else if (level === null) {
    badge.dataset.stock = "unavailable";
    badge.textContent = "not sold";
  } else if (level.in_stock) {
    badge.dataset.stock = "in";
    badge.textContent = `in stock (${level.stock})`;
  } else {
    badge.dataset.stock = "out";
    badge.textContent = "out of stock";
  }
}

function paintStatus(entry) {
  const status = entry.element.querySelector(".status");
  status.dataset.status = entry.status;
  status.textContent = STATUS_LABELS[entry.status] ?? entry.status;
}

function orderBody(entry) {
  const order = entry.details;
  if (!order) {
    const text = entry.detailsFailed ? "The order's details could not be loaded." : "Loading…";
    return [element("p", { class: "muted" }, text)];
  }
  const items = order.items.map((item) =>
    element(
      "li",
      { "data-product": item.product },
      element("span", { class: "item-name" }, `${item.quantity} × ${item.name}`),
      element("span", { class: "line-total" }, formatMoney(item.line_total, order.currency)),
      stockBadge(item.product),
    ),
  );
  const discount = order.discount_code
    ? [
        " · ",
        element(
          "span",
          { class: "discount" },
          `${order.discount_code} −${formatMoney(order.discount_total, order.currency)}`,
        ),
      ]
    : [];
  return [
    element(
      "p",
      { class: "order-meta" },
      "Placed ",
      element("time", { datetime: order.created_at }, formatDate(order.created_at)),
      " · Total ",
      element("strong", { class: "total" }, formatMoney(order.total, order.currency)),
      ...discount,
    ),
    element("ul", { class: "items", "aria-label": "Items" }, ...items),
  ];
}

// Draw the order's card, newest order first (ids grow with time).
function renderOrder(entry) {
  const card = element(
    "li",
    { class: "order", "data-order-id": String(entry.id) },
    element(
      "div",
      { class: "order-head" },
      element("h3", {}, `Order #${entry.id}`),
      element("span", { class: "status" }),
    ),
    ...orderBody(entry),
  );
  if (entry.element) {
    entry.element.replaceWith(card);
  } else {
    const list = byId("orders");
    const older = [...list.children].find((other) => Number(other.dataset.orderId) < entry.id);
    list.insertBefore(card, older ?? null);
  }
  entry.element = card;
  paintStatus(entry);
}

function showEmptyState() {
  byId("no-orders").hidden = state.orders.size > 0;
}

function showConnection(connection) {
  const indicator = byId("connection");
  indicator.hidden = false;
  indicator.dataset.state = connection;
  indicator.textContent = CONNECTION_LABELS[connection];
}

function showError(target, error) {
  target.textContent = error instanceof ApiError ? error.message : UNREACHABLE;
  target.hidden = false;
}

function announce(text) {
  byId("announcer").textContent = text;
}

// --- signing in and out ----------------------------------------------------------------

async function startTracking() {
  byId("sign-in").hidden = true;
  byId("account").hidden = false;
  byId("signed-in-email").textContent = state.session.email;
  await reloadOrders();
  if (state.session) followOrders();
}

async function signIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const failure = byId("login-error");
  const submit = form.querySelector("button[type=submit]");
  failure.hidden = true;
  submit.disabled = true;
  try {
    const email = byId("email").value.trim();
    const tokens = await request("/api/v1/auth/login", {
      method: "POST",
      body: { email, password: byId("password").value },
      authenticated: false,
    });
    saveSession({ accessToken: tokens.access_token, refreshToken: tokens.refresh_token, email });
    form.reset();
    await startTracking();
  } catch (error) {
    showError(failure, error);
  } finally {
    submit.disabled = false;
  }
}

// Forget the session here; `notice` tells why when the user did not ask for it.
function endSession(notice) {
  sessionEpoch += 1;
  state.session = null;
  sessionStorage.removeItem(SESSION_KEY);
  state.orderFeed?.stop();
  state.orderFeed = null;
  state.orders.clear();
  state.highestEventId = 0;
  byId("orders").replaceChildren();
  byId("orders-note").hidden = true;
  byId("orders-error").hidden = true;
  byId("account").hidden = true;
  byId("sign-in").hidden = false;
  const failure = byId("login-error");
  failure.hidden = !notice;
  failure.textContent = notice ?? "";
  showConnection("offline");
  byId("connection").hidden = true; // the stock badges stay live: they need no account
  followStock();
}

function signOut() {
  const refreshToken = state.session?.refreshToken;
  endSession();
  if (refreshToken) {
    request("/api/v1/auth/logout", {
      method: "POST",
      body: { refresh_token: refreshToken },
      authenticated: false,
    }).catch(() => {}); // the tokens are gone from this page either way
  }
}

document.addEventListener("DOMContentLoaded", () => {
  byId("login-form").addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", signOut);
  byId("watch-form").addEventListener("submit", watchProduct);
  if (state.session) startTracking();
});
