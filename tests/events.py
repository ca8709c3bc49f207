"""Listening to the hub in tests."""

from __future__ import annotations

from typing import Any

from core.context import AppContext
from schemas.events import Event


def hear(ctx: AppContext, *channels: str) -> list[dict[str, Any]]:
    """Every event published on `channels` from now on, in order, as JSON-ready dicts
    (routing fields included)."""
    heard: list[dict[str, Any]] = []

    def listen(event: Event) -> None:
        heard.append(event.model_dump(mode="json"))

    for channel in channels:
        ctx.hub.subscribe(channel, listen)
    return heard
