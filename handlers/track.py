"""/track: the shoppers' order tracking page (docs/websockets.md): static files read at start."""

from __future__ import annotations

from pathlib import Path

from handlers.base import HTML, SCRIPT, STYLESHEET, file_route

STATIC_TRACK = Path(__file__).resolve().parent.parent / "static" / "track"
# The page talks to its own origin only: REST over fetch, the channels over ws:/wss:.
TRACK_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)

routes = [
    file_route(r"/track", "track:page", STATIC_TRACK / "index.html", HTML, TRACK_CSP),
    file_route(r"/track/track.js", "track:script", STATIC_TRACK / "track.js", SCRIPT, TRACK_CSP),
    file_route(
        r"/track/track.css", "track:stylesheet", STATIC_TRACK / "track.css", STYLESHEET, TRACK_CSP
    ),
]
