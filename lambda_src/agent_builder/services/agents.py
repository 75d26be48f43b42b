"""Agents: create, list, get, delete, with the rules that depend on configuration.

The request models (handlers/schemas.py) check shapes and static ranges; here go the
rules that need settings or the caller's tier, so they hold for any caller of the
domain, not only the HTTP API.

A member's agents belong to their organisation (keyed `org#<organizationId>`, with
`createdBy`, `team`, `project`): every member lists and reads them; who may create,
launch and delete is the policy table's (agent_builder/access.py). While a member, a
user's agents from before they joined are not theirs to use; they are again on leaving.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent_builder import pagination, timeutil
from agent_builder.access import Membership
from agent_builder.audit import AuditEvent
from agent_builder.errors import AgentNotFound, ImageNotAllowed, InvalidInput
from agent_builder.repositories.agents import AgentsRepository
from agent_builder.services.caller import Caller
from agent_builder.services.profiles import ProfileService
from agent_builder.validation import COST_TAG_VALUE, MAX_INSTRUCTIONS_BYTES, valid_id

# Tiers whose runs happen in the customer's own account, where their image may run.
IMAGE_TIERS = frozenset({"personal", "enterprise"})
AGENT_FIELDS = (
    "agentId",
    "name",
    "model",
    "instructions",
    "parameters",
    "image",
    "createdAt",
    "team",
    "project",
    "createdBy",
)
# What an organisation's agent may name for cost allocation (task tags).
COST_FIELDS = ("team", "project")


def owner_key(member: Membership) -> str:
    """Whose agents the caller works with: their organisation's, or their own."""
    return f"org#{member.organization_id}" if member.organization_id else member.user_id


def agent_view(item: dict[str, Any]) -> dict[str, Any]:
    return {field: item.get(field) for field in AGENT_FIELDS} | {
        "parameters": item.get("parameters") or {}
    }


class AgentService:
    def __init__(
        self,
        agents: AgentsRepository,
        profiles: ProfileService,
        *,
        allowed_models: tuple[str, ...],
        max_output_tokens: int,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._agents = agents
        self._profiles = profiles
        self._models = allowed_models
        self._max_tokens = max_output_tokens
        self._clock = clock

    def validate(self, definition: dict[str, Any]) -> None:
        name = definition["name"]
        if name != name.strip():
            raise InvalidInput("name must not start or end with a space")
        if definition["model"] not in self._models:
            raise InvalidInput(f"model must be one of: {', '.join(self._models)}")
        instructions = definition["instructions"]
        if not instructions.strip():
            raise InvalidInput("instructions must not be blank")
        if len(instructions.encode("utf-8")) > MAX_INSTRUCTIONS_BYTES:
            raise InvalidInput(
                f"instructions must be at most {MAX_INSTRUCTIONS_BYTES} bytes (UTF-8)"
            )
        max_tokens = (definition.get("parameters") or {}).get("maxTokens")
        if max_tokens is not None and not 1 <= max_tokens <= self._max_tokens:
            raise InvalidInput(f"parameters.maxTokens must be between 1 and {self._max_tokens}")
        for field in COST_FIELDS:
            value = definition.get(field)
            if value is not None and not COST_TAG_VALUE.fullmatch(value):
                raise InvalidInput(
                    f"{field} must be 1-64 letters, digits, spaces or _ . : / = + - @ "
                    "(it becomes a cost-allocation tag), not starting or ending with a space"
                )

    def create(self, caller: Caller, definition: dict[str, Any]) -> dict[str, Any]:
        self.validate(definition)
        member = caller.membership()
        if not member.is_member and any(definition.get(field) for field in COST_FIELDS):
            raise InvalidInput("team and project are for agents of an organisation")
        if definition.get("image") is not None:
            tier = self._profiles.ensure(caller).get("tier")
            if tier not in IMAGE_TIERS:
                raise ImageNotAllowed(
                    "a custom image needs a connected AWS account (Tier 2) or an organisation "
                    "(Tier 3); freemium agents run the platform's agent runner"
                )
        else:
            self._profiles.ensure(caller)
        item = {
            "userId": owner_key(member),
            "agentId": str(uuid.uuid4()),
            "name": definition["name"],
            "model": definition["model"],
            "instructions": definition["instructions"],
            "parameters": definition.get("parameters") or None,
            "image": definition.get("image"),
            "createdAt": timeutil.iso(self._clock()),
        }
        if member.is_member:
            item |= {
                "organizationId": member.organization_id,
                "createdBy": caller.user_id,
                "team": definition.get("team"),
                "project": definition.get("project"),
            }
        self._agents.create(
            item,
            AuditEvent(
                caller.user_id,
                "agent.create",
                details={"agentId": item["agentId"]},
                organization_id=member.organization_id,
            ),
        )
        return agent_view(item)

    def get(self, caller: Caller, agent_id: str) -> dict[str, Any]:
        return agent_view(self.require(caller, agent_id))

    def require(self, caller: Caller, agent_id: str) -> dict[str, Any]:
        """The caller's (or their organisation's) agent; another user's or organisation's
        id is simply not found (404, not 403)."""
        key = owner_key(caller.membership())
        item = self._agents.get(key, agent_id) if valid_id(agent_id) else None
        if item is None:
            raise AgentNotFound("no agent with this id")
        return item

    def require_for_launch(
        self, caller: Caller, agent_id: str
    ) -> tuple[dict[str, Any], Membership]:
        """The agent to launch, with the route's role check, in the calls a launch already
        makes: one BatchGetItem of the caller's own agent and profile (a member's agent is
        then their organisation's: one GetItem more)."""
        if not valid_id(agent_id):
            if caller.access is not None:
                caller.access.check()
            raise AgentNotFound("no agent with this id")
        own, profile = self._agents.get_with_profile(caller.user_id, agent_id)
        member = (
            caller.access.check(profile=profile, loaded=True)
            if caller.access is not None
            else Membership.of(caller.user_id, profile)
        )
        item = self._agents.get(owner_key(member), agent_id) if member.is_member else own
        if item is None:
            raise AgentNotFound("no agent with this id")
        return item, member

    def list(self, caller: Caller, limit: int, next_token: str | None) -> dict[str, Any]:
        after = pagination.decode(next_token, ("agentId",))["agentId"] if next_token else None
        items, last = self._agents.list(owner_key(caller.membership()), limit, after)
        return {
            "agents": [agent_view(item) for item in items],
            "nextToken": pagination.encode({"agentId": last}) if last else None,
        }

    def delete(self, caller: Caller, agent_id: str) -> None:
        """Delete an agent: a developer their own organisation agents, an admin any."""
        member = caller.membership()
        if not valid_id(agent_id):
            raise AgentNotFound("no agent with this id")
        if member.is_member:
            if caller.access is not None:
                caller.access.check()  # the role first: a viewer deletes nothing (403)
            item = self.require(caller, agent_id)
            if caller.access is not None:
                caller.access.check(owner=item.get("createdBy"))
            self._agents.delete(
                item["userId"],
                agent_id,
                AuditEvent(
                    caller.user_id,
                    "agent.delete",
                    details={"agentId": agent_id},
                    organization_id=member.organization_id,
                ),
                created_by=item.get("createdBy"),
            )
            return
        if caller.access is not None:
            caller.access.check()
        self._agents.delete(
            caller.user_id,
            agent_id,
            AuditEvent(caller.user_id, "agent.delete", details={"agentId": agent_id}),
        )
