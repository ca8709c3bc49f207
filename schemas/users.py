"""Request and response models for /api/v1/users (staff manage users)."""

from __future__ import annotations

from pydantic import Field

from schemas.common import ORMModel, PageParams, RequestModel, UtcDatetime


class UserQuery(PageParams):
    """Filters of GET /users; a blank `search` counts as not given."""

    search: str | None = Field(
        default=None,
        max_length=254,
        description="Part of the email or the full name, in any case.",
    )
    is_active: bool | None = None
    is_staff: bool | None = None


class UserAccountOut(ORMModel):
    id: int
    email: str
    full_name: str
    is_staff: bool
    is_active: bool
    email_verified: bool
    created_at: UtcDatetime


class UserAccountUpdate(RequestModel):
    is_active: bool
