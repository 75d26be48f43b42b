"""Local mode: the agent-builder control plane on one machine (see docs/local-mode.md)."""
