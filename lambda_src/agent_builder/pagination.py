"""Opaque, validated page tokens.

A token carries only the sort-key part of DynamoDB's LastEvaluatedKey; the partition
key is always the caller's own userId, filled in on decode, so a forged token can at
worst skip within the caller's own items, never reach another user's.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from agent_builder.errors import InvalidNextToken

MAX_TOKEN_CHARS = 1024


def encode(fields: dict[str, str]) -> str:
    raw = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, keys: tuple[str, ...]) -> dict[str, str]:
    """The fields of a token made by `encode`; InvalidNextToken for anything else."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidNextToken("nextToken is not a token this API issued")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields: Any = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidNextToken("nextToken is not a token this API issued") from None
    if (
        not isinstance(fields, dict)
        or set(fields) != set(keys)
        or not all(isinstance(value, str) and 0 < len(value) <= 256 for value in fields.values())
    ):
        raise InvalidNextToken("nextToken is not a token this API issued")
    return fields
