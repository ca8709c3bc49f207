"""The query parameters of the websocket channels (docs/websockets.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from schemas.catalog import Slug

# Ids are 64-bit: up to 18 digits, like the REST paths.
MAX_ID = 10**18 - 1
MAX_WATCHED_PRODUCTS = 100


def _comma_list(value: object) -> object:
    return [part.strip() for part in value.split(",")] if isinstance(value, str) else value


class OrderFeedQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # Not validated here: a missing or bad token is 4401, not a parameter error (4400).
    token: str | None = Field(default=None, description="An access JWT (required).")
    order: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this order.")
    since: int | None = Field(
        default=None,
        ge=0,
        le=MAX_ID,
        description="Replay the stored events after this event id first.",
    )


class InventoryFeedQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    products: Annotated[
        list[Slug],
        BeforeValidator(_comma_list),
        Field(min_length=1, max_length=MAX_WATCHED_PRODUCTS),
    ] = Field(description="Product slugs, comma-separated.")
