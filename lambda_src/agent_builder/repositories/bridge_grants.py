"""The bridge's short-lived records: one table, one item per state, code or access token.

Items are keyed by `<kind>#<sha256 of the secret value>`, so the table never holds a
usable state, code or token (what a leaked read of it would give an attacker). A state
and a code are taken with one conditional DeleteItem that returns the old item: whoever
deletes it first gets it, a second use finds nothing (single use without a read first).
DynamoDB's TTL removes leftovers; `expiresAt` is checked on use too, since TTL deletes
only eventually.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

STATE = "state"
CODE = "code"
ACCESS_TOKEN = "token"  # noqa: S105 (a key prefix, not a secret)


def grant_id(kind: str, secret: str) -> str:
    return f"{kind}#{hashlib.sha256(secret.encode()).hexdigest()}"


class GrantStore:
    def __init__(self, dynamodb: Any, table: str, *, clock: Any = time.time) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._clock = clock

    def put(self, kind: str, secret: str, data: Mapping[str, Any], *, lifetime: int) -> None:
        """Store `data` under a fresh secret (never overwriting one: secrets are random)."""
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                "grantId": {"S": grant_id(kind, secret)},
                "data": {"S": json.dumps(dict(data), separators=(",", ":"))},
                "expiresAt": {"N": str(int(self._clock()) + lifetime)},
            },
            ConditionExpression="attribute_not_exists(grantId)",
        )

    def take(self, kind: str, secret: str) -> dict[str, Any] | None:
        """The data stored under `secret`, deleted in the same call; None when it is
        unknown, already used, or expired."""
        client = self._dynamodb
        try:
            answer = client.delete_item(
                TableName=self._table,
                Key={"grantId": {"S": grant_id(kind, secret)}},
                ConditionExpression="attribute_exists(grantId)",
                ReturnValues="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException:
            return None
        return self._live(answer.get("Attributes"))

    def get(self, kind: str, secret: str) -> dict[str, Any] | None:
        """The data under `secret` while it lives (an access token is read many times)."""
        answer = self._dynamodb.get_item(
            TableName=self._table,
            Key={"grantId": {"S": grant_id(kind, secret)}},
            ConsistentRead=True,
        )
        return self._live(answer.get("Item"))

    def _live(self, item: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not item or int(item["expiresAt"]["N"]) <= self._clock():
            return None
        data: dict[str, Any] = json.loads(item["data"]["S"])
        return data
