"""What an audit record says, as services state it; repositories/audit.py stores it.

A record never holds secrets: no External ID, no credentials, no agent input or
instructions (lambda_src/CONTRACT.md "Audit").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUCCESS = "success"
# A limit said no: nothing changed.
REFUSED = "refused"
FAILURE = "failure"


@dataclass(frozen=True)
class AuditEvent:
    """`actor` did `action` (e.g. `account.connect`) with `result`.

    `account_id` is the AWS account acted in, `reason` what went wrong, and `details`
    the action's own fields (runId, agentId, region, via, tier, code...; None is left out).
    With `organization_id`, the record is in that organisation's trail too (GET /org/audit).
    """

    actor: str
    action: str
    result: str = SUCCESS
    account_id: str | None = None
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    organization_id: str | None = None

    def with_details(self, **details: Any) -> AuditEvent:
        """The same event with more details (what only the writer knows, e.g. `refunded`)."""
        return dataclasses.replace(self, details={**self.details, **details})
