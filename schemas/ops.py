"""Response models of the ops endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Check = Literal["ok", "unavailable"]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    database: Check
    redis: Check | None = Field(default=None, description="Only when REDIS_URL is set.")
