"""Request and response models for product reviews."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints

from schemas.catalog import NotNull, RowSlug
from schemas.common import ORMModel, RequestModel, UtcDatetime

Rating = Annotated[int, Field(ge=1, le=5)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(max_length=10_000)]


def _name_of(value: Any) -> Any:
    """The author (a User) is shown by the name they gave, never by their email."""
    return getattr(value, "full_name", value)


class ReviewIn(RequestModel):
    rating: Rating
    title: Title
    body: Body = ""


class ReviewUpdate(RequestModel):
    rating: NotNull[Rating] = None
    title: NotNull[Title] = None
    body: NotNull[Body] = None


class ReviewOut(ORMModel):
    id: int
    product: RowSlug
    user_id: int
    author: Annotated[str, BeforeValidator(_name_of)]
    rating: int
    title: str
    body: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
