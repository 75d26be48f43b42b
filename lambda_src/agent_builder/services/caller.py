"""Who is calling: the JWT subject the API Gateway authorizer verified."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    user_id: str
    email: str | None = None
