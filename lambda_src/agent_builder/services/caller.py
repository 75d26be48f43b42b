"""Who is calling: the JWT subject the API Gateway authorizer verified."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_builder.access import Access, Membership


@dataclass(frozen=True)
class Caller:
    user_id: str
    email: str | None = None
    # The request's access rule and the caller's organisation membership (handlers/api.py
    # sets it on every request; a caller without one is outside any organisation).
    access: Access | None = field(default=None, compare=False, repr=False)

    def membership(self) -> Membership:
        from agent_builder.access import Membership

        return self.access.membership() if self.access else Membership(self.user_id)
