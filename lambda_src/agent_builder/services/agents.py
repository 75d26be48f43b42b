"""Agents: create, list, get, delete, with the rules that depend on configuration.

The request models (handlers/schemas.py) check shapes and static ranges; here go the
rules that need settings or the caller's tier, so they hold for any caller of the
domain, not only the HTTP API.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent_builder import pagination, timeutil
from agent_builder.audit import AuditEvent
from agent_builder.errors import AgentNotFound, ImageNotAllowed, InvalidInput
from agent_builder.repositories.agents import AgentsRepository
from agent_builder.services.caller import Caller
from agent_builder.services.profiles import ProfileService
from agent_builder.validation import MAX_INSTRUCTIONS_BYTES, valid_id

# Tiers whose runs happen in the customer's own account, where their image may run.
IMAGE_TIERS = frozenset({"personal", "enterprise"})
AGENT_FIELDS = ("agentId", "name", "model", "instructions", "parameters", "image", "createdAt")


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

    def create(self, caller: Caller, definition: dict[str, Any]) -> dict[str, Any]:
        self.validate(definition)
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
            "userId": caller.user_id,
            "agentId": str(uuid.uuid4()),
            "name": definition["name"],
            "model": definition["model"],
            "instructions": definition["instructions"],
            "parameters": definition.get("parameters") or None,
            "image": definition.get("image"),
            "createdAt": timeutil.iso(self._clock()),
        }
        self._agents.create(
            item,
            AuditEvent(caller.user_id, "agent.create", details={"agentId": item["agentId"]}),
        )
        return agent_view(item)

    def get(self, caller: Caller, agent_id: str) -> dict[str, Any]:
        return agent_view(self.require(caller, agent_id))

    def require(self, caller: Caller, agent_id: str) -> dict[str, Any]:
        """The caller's agent; another user's id is simply not found (404, not 403)."""
        item = self._agents.get(caller.user_id, agent_id) if valid_id(agent_id) else None
        if item is None:
            raise AgentNotFound("no agent with this id")
        return item

    def list(self, caller: Caller, limit: int, next_token: str | None) -> dict[str, Any]:
        after = pagination.decode(next_token, ("agentId",))["agentId"] if next_token else None
        items, last = self._agents.list(caller.user_id, limit, after)
        return {
            "agents": [agent_view(item) for item in items],
            "nextToken": pagination.encode({"agentId": last}) if last else None,
        }

    def delete(self, caller: Caller, agent_id: str) -> None:
        if not valid_id(agent_id):
            raise AgentNotFound("no agent with this id")
        self._agents.delete(
            caller.user_id,
            agent_id,
            AuditEvent(caller.user_id, "agent.delete", details={"agentId": agent_id}),
        )
