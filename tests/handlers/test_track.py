"""The order tracking page and its assets (docs/websockets.md, /track)."""

from __future__ import annotations

import pytest

from tests.client import ApiClient
from tests.handlers.test_ops import assert_security_headers

# Its own origin only (REST and the channels), no inline script or style, never framed.
TRACK_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
FILES = [
    ("/track", "text/html; charset=UTF-8", b"<title>Track your orders</title>"),
    ("/track/track.js", "text/javascript; charset=UTF-8", b'"use strict";'),
    ("/track/track.css", "text/css; charset=UTF-8", b".connection"),
]


@pytest.mark.parametrize("path, content_type, marker", FILES)
@pytest.mark.parametrize("slash", ["", "/"], ids=["bare", "trailing-slash"])
async def test_the_page_and_its_assets_are_served_with_their_type_and_policy(
    client: ApiClient, path: str, content_type: str, marker: bytes, slash: str
) -> None:
    response = await client.get(path + slash)
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Content-Security-Policy"] == TRACK_CSP
    assert marker in response.body
    assert_security_headers(response.headers)


async def test_the_page_loads_its_script_and_stylesheet_from_their_routes(
    client: ApiClient,
) -> None:
    page = (await client.get("track:page")).body
    assert b'<script src="/track/track.js" defer></script>' in page
    assert b'<link rel="stylesheet" href="/track/track.css">' in page
    assert b"<script>" not in page  # the policy would block an inline script


async def test_head_answers_like_get_without_a_body(client: ApiClient) -> None:
    response = await client.request("HEAD", "track:page")
    assert response.status == 200
    assert response.body == b""
    assert int(response.headers["Content-Length"]) > 0
