"""Lambda entry points: thin adapters from an event to the agent_builder domain."""
