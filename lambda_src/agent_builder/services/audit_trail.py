"""Reading audit trails: the caller's own (GET /audit) and their organisation's
(GET /org/audit, admins: the policy table says so), newest first, a page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent_builder import pagination, timeutil
from agent_builder.errors import InvalidInput, NotInOrganization
from agent_builder.repositories.audit import AuditLog, audit_view, org_scope, user_scope
from agent_builder.services.caller import Caller


def _bound(value: str | None, name: str) -> str | None:
    """An ISO-8601 time as the trail's event ids begin with it (UTC, milliseconds, Z)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise InvalidInput(f"{name} must say its time zone (e.g. a trailing Z for UTC)")
        return timeutil.iso(moment)
    except (ValueError, OverflowError):
        # OverflowError: a time near year 1 or 9999 whose offset leaves the calendar.
        raise InvalidInput(f"{name} must be an ISO-8601 time, e.g. 2026-01-31T00:00:00Z") from None


class AuditTrail:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def _page(
        self, scope: str, limit: int, next_token: str | None, **filters: str | None
    ) -> dict[str, Any]:
        after = pagination.decode(next_token, ("eventId",))["eventId"] if next_token else None
        start = _bound(filters.pop("start", None), "from")
        end = _bound(filters.pop("end", None), "to")
        if start and end and start > end:
            raise InvalidInput("from must not be after to")
        items, last = self._audit.trail(scope, limit, after, start=start, end=end, **filters)
        return {
            "events": [audit_view(item) for item in items],
            "nextToken": pagination.encode({"eventId": last}) if last else None,
        }

    def own(self, caller: Caller, limit: int, next_token: str | None) -> dict[str, Any]:
        return self._page(user_scope(caller.user_id), limit, next_token)

    def organization(
        self,
        caller: Caller,
        limit: int,
        next_token: str | None,
        *,
        actor: str | None = None,
        action: str | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> dict[str, Any]:
        member = caller.membership()
        if member.organization_id is None:
            raise NotInOrganization("you are not a member of an organisation")
        return self._page(
            org_scope(member.organization_id),
            limit,
            next_token,
            actor=actor,
            action=action,
            start=start,
            end=end,
        )
